# mswa-serve image.
#   docker build -t mswa-serve .                          CPU (Debian 12, LibTorch 1.13, OpenBLAS)
#   docker run -p 50051:50051 -p 8000:8000 -p 9090:9090 mswa-serve
#
# The build stage runs what CI runs (scripts/setup.sh's build packages, scripts/build.sh, the
# unit tests; --build-arg MSWA_IMAGE_TESTS=0 skips the tests); the image holds the stripped
# binaries, the SentencePiece wrapper, the default model and the shared libraries they load,
# and runs as an unprivileged user.
#
# GPU (the engine on the GPU; the image's default flags include --device=cuda):
#   docker build --target cuda -t mswa-serve:cuda .
#   docker run --gpus all -p 50051:50051 -p 8000:8000 -p 9090:9090 mswa-serve:cuda
# The last stage (cpu) is the default target, and each variant's image is a stage of its own
# that --target names, so Docker (BuildKit) and podman/buildah build it alike and skip the other
# variant's stages. The cuda stages add scripts/setup_cuda.sh (NVIDIA's CUDA Toolkit 12.6 for
# Debian 12 and PyTorch's CUDA 12.6 LibTorch in /opt/torch; it needs those two hosts and stops
# at once, saying so, when it cannot reach them) and build with the CUDA kernels. The CUDA
# image's base is NVIDIA's CUDA runtime image (CUDA_RUNTIME_IMAGE, Ubuntu 24.04, whose glibc and
# libstdc++ are newer than the build's): LibTorch's libraries keep their /opt/torch paths, and
# the Debian libraries the binaries load that the base image lacks (gRPC, protobuf, Abseil, ...)
# are bundled by scripts/bundle_libs.sh. The NVIDIA container toolkit provides the driver.
# deploy/k8s/overlays/gpu expects the image as mswa-serve:cuda.
ARG BASE_IMAGE=debian:bookworm-slim
ARG RUNTIME_IMAGE=debian:bookworm-slim
ARG CUDA_RUNTIME_IMAGE=nvidia/cuda:12.6.3-runtime-ubuntu24.04

# Build stages: setup, build and unit tests as CI runs them, staged under /out
# (scripts/docker_build.sh).
FROM ${BASE_IMAGE} AS build-cuda
WORKDIR /src
COPY scripts/ scripts/
RUN bash scripts/setup.sh --build && bash scripts/setup_cuda.sh
COPY . .
RUN bash scripts/docker_build.sh cuda

FROM ${BASE_IMAGE} AS build-cpu
ARG MSWA_IMAGE_TESTS=1
WORKDIR /src
COPY scripts/ scripts/
RUN bash scripts/setup.sh --build
COPY . .
RUN MSWA_IMAGE_TESTS=${MSWA_IMAGE_TESTS} bash scripts/docker_build.sh cpu

# The CUDA image: NVIDIA's image (CUDA runtime libraries, the container toolkit's environment),
# LibTorch at its build path, and the bundled Debian libraries the base does not have.
FROM ${CUDA_RUNTIME_IMAGE} AS cuda
COPY --from=build-cuda /out/cuda/root/ /
COPY --from=build-cuda /out/deps/ /usr/local/lib/mswa-deps/
COPY scripts/bundle_libs.sh /tmp/bundle_libs.sh
RUN bash /tmp/bundle_libs.sh prune /usr/local/lib/mswa-deps \
 && echo /usr/local/lib/mswa-deps > /etc/ld.so.conf.d/zz-mswa-deps.conf && ldconfig \
 && rm /tmp/bundle_libs.sh \
 && useradd --system --uid 10001 --user-group --no-create-home mswa
COPY --from=build-cuda /out/bin/ /usr/local/bin/
COPY --from=build-cuda /out/lib/mswa/ /usr/local/lib/mswa/
COPY --from=build-cuda /out/share/mswa/ /usr/local/share/mswa/
USER 10001:10001
# gRPC, the OpenAI-compatible HTTP API, Prometheus metrics
EXPOSE 50051 8000 9090
ENTRYPOINT ["/usr/local/bin/mswa-server", "--model_dir=/usr/local/share/mswa/models/mswa-books-small"]
CMD ["--listen=0.0.0.0:50051", "--http_listen=0.0.0.0:8000", "--metrics_listen=0.0.0.0:9090", "--device=cuda"]

# The CPU image (the default target): Debian 12 and the libraries the binaries load, bundled
# like the CUDA image's (no package installs: the same files as the build's, half the size).
FROM ${RUNTIME_IMAGE} AS cpu
COPY --from=build-cpu /out/deps/ /usr/local/lib/mswa-deps/
COPY scripts/bundle_libs.sh /tmp/bundle_libs.sh
RUN bash /tmp/bundle_libs.sh prune /usr/local/lib/mswa-deps \
 && echo /usr/local/lib/mswa-deps > /etc/ld.so.conf.d/zz-mswa-deps.conf && ldconfig \
 && rm /tmp/bundle_libs.sh \
 && useradd --system --uid 10001 --user-group --no-create-home mswa
COPY --from=build-cpu /out/bin/ /usr/local/bin/
COPY --from=build-cpu /out/lib/mswa/ /usr/local/lib/mswa/
COPY --from=build-cpu /out/share/mswa/ /usr/local/share/mswa/
USER 10001:10001
# gRPC, the OpenAI-compatible HTTP API, Prometheus metrics
EXPOSE 50051 8000 9090
ENTRYPOINT ["/usr/local/bin/mswa-server", "--model_dir=/usr/local/share/mswa/models/mswa-books-small"]
CMD ["--listen=0.0.0.0:50051", "--http_listen=0.0.0.0:8000", "--metrics_listen=0.0.0.0:9090"]
