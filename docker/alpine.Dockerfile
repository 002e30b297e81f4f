# pyinit on alpine (musl): the bundle brings its own glibc loader and libraries under
# /opt/pyinit/glibc and never touches the image's musl; your command still uses musl.
#   scripts/build && docker build -f docker/alpine.Dockerfile -t my-service .
FROM alpine:3.20
ARG PYINIT_VERSION=0.1.0
ADD dist/pyinit-${PYINIT_VERSION}-linux-x86_64.tar.gz /
USER 65534:65534
ENTRYPOINT ["/opt/pyinit/pyinit", "--"]
CMD ["sh", "-c", "echo started; exec sleep 3600"]
