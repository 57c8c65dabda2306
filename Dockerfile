# lvsmon container image. The build stage compiles with cgo, because the
# RRD graphs link librrd; the runtime stage has librrd and nothing to
# build with. docker-compose.yml runs it next to Prometheus and Grafana.
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends librrd-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The Makefile's build information: docker build --build-arg VERSION=...
ARG VERSION=devel
ARG REVISION=unknown
ARG BRANCH=unknown
ARG BUILD_DATE=unknown
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-X github.com/lvsmon/lvsmon/internal/buildinfo.Version=${VERSION} \
    -X github.com/lvsmon/lvsmon/internal/buildinfo.Revision=${REVISION} -X github.com/lvsmon/lvsmon/internal/buildinfo.Branch=${BRANCH} \
    -X github.com/lvsmon/lvsmon/internal/buildinfo.User=docker -X github.com/lvsmon/lvsmon/internal/buildinfo.Date=${BUILD_DATE}" -o /out/lvsmon ./cmd/lvsmon

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates librrd8 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/lvsmon /usr/local/bin/lvsmon
COPY scripts/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/lvsmon
EXPOSE 9160
# lvsmon asks itself: no curl or wget in the image. With another
# --web.listen-address, override it (healthcheck --url http://HOST:PORT/-/healthy).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/lvsmon", "healthcheck", "--url", "http://127.0.0.1:9160/-/healthy", "--timeout", "5s"]
# lvsmon run --config /etc/lvsmon/lvsmon.yaml when that file is mounted,
# lvsmon demo otherwise; CMD holds flags for either.
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["--data-dir", "/var/lib/lvsmon"]
