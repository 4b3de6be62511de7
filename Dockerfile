# Static jwtd on a distroless base, running as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /jwtd ./cmd/jwtd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /jwtd /jwtd
USER nonroot:nonroot
WORKDIR /var/lib/jwtd
ENV JWTD_LISTEN=0.0.0.0:8080 JWTD_DATA_DIR=/var/lib/jwtd
EXPOSE 8080
ENTRYPOINT ["/jwtd", "serve"]
