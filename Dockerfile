# mswa-serve image.
#   docker build -t mswa-serve .                          CPU (Debian 12, LibTorch 1.13, OpenBLAS)
#   docker run -p 50051:50051 -p 9090:9090 mswa-serve
#
# The build stage runs exactly what CI runs (scripts/setup.sh, scripts/build.sh, the unit
# tests); the runtime stage holds the binaries, the SentencePiece wrapper, the default model and
# the Debian packages of deploy/docker/runtime-packages.txt, and runs as an unprivileged user.
#
# GPU: the CUDA kernels build wherever nvcc is found (see the README's GPU section). A CUDA image
# needs a CUDA-enabled LibTorch, which Debian does not package: build on
# nvidia/cuda:<version>-devel with LibTorch from PyTorch's CUDA wheels and
# -DCMAKE_PREFIX_PATH=<torch cmake path>, run on nvidia/cuda:<version>-runtime. BASE_IMAGE and
# RUNTIME_IMAGE below select the bases; deploy/k8s/overlays/gpu expects that image as
# mswa-serve:cuda.
ARG BASE_IMAGE=debian:bookworm-slim
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY scripts/ scripts/
RUN bash scripts/setup.sh
COPY . .
RUN bash scripts/build.sh -DMSWA_BUILD_BENCH=OFF \
 && cd build && ctest -L unit --output-on-failure -j 2 \
 && mkdir -p /out/bin /out/lib/mswa /out/share/mswa/models \
 && cp server/mswa-server client/mswa-client model/mswa-model model/mswa-train /out/bin/ \
 && cp lib/libmswa_spm.so /out/lib/mswa/ \
 && cp -r /src/models/. /out/share/mswa/models/

FROM ${RUNTIME_IMAGE}
COPY deploy/docker/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends $(grep -v '^#' /tmp/runtime-packages.txt) \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
 && useradd --system --uid 10001 --user-group --no-create-home mswa
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/lib/mswa/ /usr/local/lib/mswa/
COPY --from=build /out/share/mswa/ /usr/local/share/mswa/
USER 10001:10001
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/mswa-server", "--model_dir=/usr/local/share/mswa/models/mswa-books-small"]
CMD ["--listen=0.0.0.0:50051", "--metrics_listen=0.0.0.0:9090"]
