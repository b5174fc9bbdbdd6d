# syntax=docker/dockerfile:1
# Build: docker build --build-arg VERSION=$(git describe --tags --always) -t issuer .
# Run:   docker run -p 8080:8080 -v issuer-data:/data issuer
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/issuer ./cmd/issuer \
 && mkdir -p /out/data

# distroless/static: no shell, no package manager, CA certificates, a nonroot user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/issuer /usr/local/bin/issuer
COPY --from=build --chown=65532:65532 /out/data /data
ENV ISSUER_DATA_DIR=/data \
    ISSUER_ADDR=:8080
VOLUME ["/data"]
EXPOSE 8080
USER 65532:65532
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/usr/local/bin/issuer", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/issuer"]
CMD ["serve"]
