# mswa-serve image (CPU). Build: docker build -t mswa-serve .
# The build stage runs the same scripts as a developer machine; the runtime stage keeps only the
# binaries, the SentencePiece wrapper and the shared libraries they load.
FROM debian:bookworm-slim AS build
WORKDIR /src
COPY scripts/ scripts/
RUN bash scripts/setup.sh
COPY . .
RUN bash scripts/build.sh -DMSWA_BUILD_TESTS=OFF -DMSWA_BUILD_BENCH=OFF -DMSWA_CUDA=OFF

FROM debian:bookworm-slim
RUN apt-get update -q && apt-get install -y -q --no-install-recommends \
      libtorch1.13 libopenblas0-openmp libsentencepiece0 libprotobuf32 \
      libabsl20220623 libgrpc++1.51 libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/model/mswa-model /usr/local/bin/mswa-model
COPY --from=build /src/build/lib/libmswa_spm.so /usr/local/lib/mswa/libmswa_spm.so
ENTRYPOINT ["/usr/local/bin/mswa-model"]
CMD ["--help"]
