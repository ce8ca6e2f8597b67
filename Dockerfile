# mswa-serve image.
#   docker build -t mswa-serve .                          CPU (Debian 12, LibTorch 1.13, OpenBLAS)
#   docker run -p 50051:50051 -p 9090:9090 mswa-serve
#
# The build stage runs exactly what CI runs (scripts/setup.sh, scripts/build.sh, the unit
# tests); the runtime stage holds the binaries, the SentencePiece wrapper, the default model and
# the Debian packages of deploy/docker/runtime-packages.txt, and runs as an unprivileged user.
#
# GPU (the engine on the GPU with --device=cuda):
#   docker build --build-arg VARIANT=cuda -t mswa-serve:cuda .
#   docker run --gpus all -p 50051:50051 -p 9090:9090 mswa-serve:cuda \
#     --device=cuda --listen=0.0.0.0:50051 --metrics_listen=0.0.0.0:9090
# VARIANT=cuda adds scripts/setup_cuda.sh to the build stage (NVIDIA's CUDA Toolkit for Debian 12
# and a CUDA LibTorch from PyTorch's wheels in /opt/torch; it needs those two hosts), builds with
# the CUDA kernels, and copies LibTorch's and the CUDA runtime's libraries into the runtime stage.
# The NVIDIA container toolkit provides the driver. BASE_IMAGE and RUNTIME_IMAGE select other
# Debian 12 based images; deploy/k8s/overlays/gpu expects the image as mswa-serve:cuda.
ARG BASE_IMAGE=debian:bookworm-slim
ARG RUNTIME_IMAGE=debian:bookworm-slim
ARG VARIANT=cpu

FROM ${BASE_IMAGE} AS build
ARG VARIANT
WORKDIR /src
COPY scripts/ scripts/
RUN bash scripts/setup.sh && if [ "$VARIANT" = cuda ]; then bash scripts/setup_cuda.sh; fi
COPY . .
RUN CUDA_ARGS=$(if [ "$VARIANT" = cuda ]; then bash scripts/setup_cuda.sh --cmake-args; fi) \
 && bash scripts/build.sh -DMSWA_BUILD_BENCH=OFF $CUDA_ARGS \
 && cd build && ctest -L unit --output-on-failure -j 2 \
 && mkdir -p /out/bin /out/lib/mswa /out/share/mswa/models /out/opt \
 && cp server/mswa-server client/mswa-client model/mswa-model model/mswa-train /out/bin/ \
 && cp lib/libmswa_spm.so /out/lib/mswa/ \
 && cp -r /src/models/. /out/share/mswa/models/ \
 && if [ "$VARIANT" = cuda ]; then \
      cp -r /opt/torch /out/opt/torch && mkdir -p /out/opt/cuda-lib \
      && cp -P /usr/local/cuda/lib64/libcudart.so* /out/opt/cuda-lib/; \
    fi

FROM ${RUNTIME_IMAGE}
COPY deploy/docker/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends $(grep -v '^#' /tmp/runtime-packages.txt) \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
 && useradd --system --uid 10001 --user-group --no-create-home mswa
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/lib/mswa/ /usr/local/lib/mswa/
COPY --from=build /out/share/mswa/ /usr/local/share/mswa/
# CPU image: empty. CUDA image: LibTorch and the CUDA runtime, where the binaries' RPATH points.
COPY --from=build /out/opt/ /opt/
ENV LD_LIBRARY_PATH=/opt/cuda-lib
USER 10001:10001
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/mswa-server", "--model_dir=/usr/local/share/mswa/models/mswa-books-small"]
CMD ["--listen=0.0.0.0:50051", "--metrics_listen=0.0.0.0:9090"]
