# pyinit on distroless/static (no libc, no shell; non-root user "nonroot", uid 65532).
#   scripts/build && docker build -f docker/distroless.Dockerfile -t my-service .
FROM gcr.io/distroless/static-debian12:nonroot
ARG PYINIT_VERSION=0.1.0
ADD dist/pyinit-${PYINIT_VERSION}-linux-x86_64.tar.gz /
# COPY my-static-server /my-static-server
ENTRYPOINT ["/opt/pyinit/pyinit", "--"]
CMD ["/opt/pyinit/pyinit", "--version"]
