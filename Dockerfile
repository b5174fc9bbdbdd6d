# syntax=docker/dockerfile:1
# The issuer as a small static image: no shell, no package manager, a
# non-root user.
#
# Build: docker build --build-arg VERSION=$(git describe --tags --always) -t issuer .
# Run:   docker run -p 8080:8080 -v issuer-data:/data issuer
#
# internal/deploytest lints this file and runs its build stage outside
# Docker (the same go build line), so it cannot drift from a working build.

# The build runs on the builder's own platform and cross-compiles to the
# target's (docker buildx build --platform linux/amd64,linux/arm64 .).
FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
# verify is a module of its own that go.mod replaces with ./verify: its
# go.mod must be there before go mod download can load the graph.
COPY verify/go.mod verify/go.sum verify/
RUN go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/issuer ./cmd/issuer \
 && mkdir -p /out/data

# distroless/static: CA certificates, tzdata, /etc/passwd with the nonroot
# user (65532), nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="issuer" \
      org.opencontainers.image.description="OAuth 2.0 token issuer for machine-to-machine traffic" \
      org.opencontainers.image.source="https://github.com/issuer-oauth/issuer"
COPY --from=build /out/issuer /usr/local/bin/issuer
# The embedded store's directory, owned by the runtime user (there is no
# shell to chown it later). With ISSUER_REDIS_URL it stays unused.
COPY --from=build --chown=65532:65532 /out/data /data
# No ISSUER_ADDR here: the default is :8080, and leaving it unset lets the
# issuer honour PORT where a platform sets it (Heroku, Cloud Run).
ENV ISSUER_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
USER 65532:65532
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/usr/local/bin/issuer", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/issuer"]
CMD ["serve"]
