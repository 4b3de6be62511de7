# Static jwtd on a distroless base, running as a non-root user.
#   docker build -t jwtd .
#   docker run --rm -p 8080:8080 -v jwtd-data:/var/lib/jwtd jwtd
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /jwtd ./cmd/jwtd
# The data directory, owned by distroless's nonroot user (65532): a named
# volume mounted there starts with this owner.
RUN mkdir -p /data && chown 65532:65532 /data && chmod 0700 /data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /jwtd /jwtd
COPY --from=build --chown=65532:65532 /data /var/lib/jwtd
USER nonroot:nonroot
WORKDIR /var/lib/jwtd
ENV JWTD_LISTEN=0.0.0.0:8080 JWTD_DATA_DIR=/var/lib/jwtd
EXPOSE 8080
VOLUME /var/lib/jwtd
ENTRYPOINT ["/jwtd", "serve"]
