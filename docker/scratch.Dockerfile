# pyinit in an image with no libc, no shell and no /tmp: FROM scratch, or distroless/static.
# Your program must be static (Go, Rust musl, busybox-static...); pyinit needs nothing else.
#   scripts/build && docker build -f docker/scratch.Dockerfile -t my-service .
#   docker run --read-only --user 65534:65534 my-service
FROM scratch
ARG PYINIT_VERSION=0.1.0
ADD dist/pyinit-${PYINIT_VERSION}-linux-x86_64.tar.gz /
# Your static service; here the pyinit bundle's own command stands in for one.
# COPY my-static-server /my-static-server
USER 65534:65534
ENTRYPOINT ["/opt/pyinit/pyinit", "--"]
CMD ["/opt/pyinit/pyinit", "--version"]
