# Builds Strata from Debian bookworm packages only and runs the server on :9090 with its
# data in the volume /data.
FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRATA_BUILD_TESTS=OFF \
      -DSTRATA_BUILD_BENCH=OFF \
 && cmake --build build --target strata

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends librocksdb7.8 libabsl20220623 libre2-9 \
      libsnappy1v5 libprotobuf32 libzstd1 zlib1g libspdlog1.10 libfmt9 libsimdjson14 \
      libxxhash0 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/server/strata /usr/local/bin/strata
VOLUME /data
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/strata", "--web.listen-address=0.0.0.0:9090", "--storage.tsdb.path=/data"]
