# mswa-serve image.
#   docker build -t mswa-serve .                          CPU (Debian 12, LibTorch 1.13, OpenBLAS)
#   docker run -p 50051:50051 -p 9090:9090 mswa-serve
#
# The build stage runs exactly what CI runs (scripts/setup.sh, scripts/build.sh, the unit
# tests); the runtime stage holds the binaries, the SentencePiece wrapper, the default model and
# the shared libraries they need, and runs as an unprivileged user.
#
# GPU (the engine on the GPU; the image's default flags include --device=cuda):
#   docker build --build-arg VARIANT=cuda -t mswa-serve:cuda .
#   docker run --gpus all -p 50051:50051 -p 9090:9090 mswa-serve:cuda
# VARIANT=cuda adds scripts/setup_cuda.sh to the build stage (NVIDIA's CUDA Toolkit 12.6 for
# Debian 12 and PyTorch's CUDA 12.6 LibTorch in /opt/torch; it needs those two hosts) and builds
# with the CUDA kernels. Its runtime stage is NVIDIA's CUDA runtime image (CUDA_RUNTIME_IMAGE,
# Ubuntu 24.04, whose glibc and libstdc++ are newer than the build's): LibTorch's libraries keep
# their /opt/torch paths, and the Debian libraries the binaries load that the base image lacks
# (gRPC, protobuf, Abseil, ...) are bundled by scripts/bundle_libs.sh. The NVIDIA container
# toolkit provides the driver. deploy/k8s/overlays/gpu expects the image as mswa-serve:cuda.
ARG BASE_IMAGE=debian:bookworm-slim
ARG RUNTIME_IMAGE=debian:bookworm-slim
ARG CUDA_RUNTIME_IMAGE=nvidia/cuda:12.6.3-runtime-ubuntu24.04
ARG VARIANT=cpu

FROM ${BASE_IMAGE} AS build
ARG VARIANT
WORKDIR /src
COPY scripts/ scripts/
RUN bash scripts/setup.sh && if [ "$VARIANT" = cuda ]; then bash scripts/setup_cuda.sh; fi
COPY . .
# /out/bin, /out/lib/mswa and /out/share/mswa go to the same places under /usr/local in every
# variant; /out/cuda (empty for the CPU variant) holds what only the CUDA runtime stage takes.
RUN CUDA_ARGS=$(if [ "$VARIANT" = cuda ]; then bash scripts/setup_cuda.sh --cmake-args; fi) \
 && bash scripts/build.sh -DMSWA_BUILD_BENCH=OFF $CUDA_ARGS \
 && cd build && ctest -L unit --output-on-failure -j 2 \
 && mkdir -p /out/bin /out/lib/mswa /out/share/mswa/models /out/cuda/root /out/cuda/deps \
 && cp server/mswa-server client/mswa-client model/mswa-model model/mswa-train /out/bin/ \
 && cp lib/libmswa_spm.so /out/lib/mswa/ \
 && cp -r /src/models/. /out/share/mswa/models/ \
 && if [ "$VARIANT" = cuda ]; then \
      site=$(/opt/torch/bin/python -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))') \
      && for d in torch/lib nvidia cusparselt; do \
           if [ -e "$site/$d" ]; then mkdir -p "/out/cuda/root$site/$d" && cp -a "$site/$d/." "/out/cuda/root$site/$d/"; fi; \
         done \
      && bash /src/scripts/bundle_libs.sh collect /out/cuda/deps /out/bin/* /out/lib/mswa/*; \
    fi

# CPU runtime: Debian 12 with the packages of deploy/docker/runtime-packages.txt.
FROM ${RUNTIME_IMAGE} AS runtime-cpu
COPY deploy/docker/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends $(grep -v '^#' /tmp/runtime-packages.txt) \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt
CMD ["--listen=0.0.0.0:50051", "--http_listen=0.0.0.0:8000", "--metrics_listen=0.0.0.0:9090"]

# CUDA runtime: NVIDIA's image (CUDA runtime libraries, the container toolkit's environment),
# LibTorch at its build path, and the bundled Debian libraries the base does not have.
FROM ${CUDA_RUNTIME_IMAGE} AS runtime-cuda
COPY --from=build /out/cuda/root/ /
COPY --from=build /out/cuda/deps/ /usr/local/lib/mswa-deps/
COPY scripts/bundle_libs.sh /tmp/bundle_libs.sh
RUN bash /tmp/bundle_libs.sh prune /usr/local/lib/mswa-deps \
 && echo /usr/local/lib/mswa-deps > /etc/ld.so.conf.d/zz-mswa-deps.conf && ldconfig \
 && rm /tmp/bundle_libs.sh
CMD ["--listen=0.0.0.0:50051", "--http_listen=0.0.0.0:8000", "--metrics_listen=0.0.0.0:9090", "--device=cuda"]

FROM runtime-${VARIANT}
RUN useradd --system --uid 10001 --user-group --no-create-home mswa
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/lib/mswa/ /usr/local/lib/mswa/
COPY --from=build /out/share/mswa/ /usr/local/share/mswa/
USER 10001:10001
# gRPC, the OpenAI-compatible HTTP API, Prometheus metrics
EXPOSE 50051 8000 9090
ENTRYPOINT ["/usr/local/bin/mswa-server", "--model_dir=/usr/local/share/mswa/models/mswa-books-small"]
