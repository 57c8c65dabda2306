# lvsmon container image: build with the Go toolchain, run on Debian slim.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -o /out/lvsmon ./cmd/lvsmon

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/lvsmon /usr/local/bin/lvsmon
VOLUME /var/lib/lvsmon
EXPOSE 9160
ENTRYPOINT ["/usr/local/bin/lvsmon"]
CMD ["demo", "--data-dir", "/var/lib/lvsmon"]
