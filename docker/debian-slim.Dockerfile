# pyinit in front of a service on debian:12-slim, as a non-root user on a read-only root.
#   scripts/build && docker build -f docker/debian-slim.Dockerfile -t my-service .
#   docker run --read-only my-service
FROM debian:12-slim
ARG PYINIT_VERSION=0.1.0
# ADD unpacks a local tarball: /opt/pyinit/ appears, nothing else is touched. (Or, from the
# builder image: COPY --from=pyinit-bundle /opt/pyinit /opt/pyinit)
ADD dist/pyinit-${PYINIT_VERSION}-linux-x86_64.tar.gz /
USER 65534:65534
ENTRYPOINT ["/opt/pyinit/pyinit", "--"]
CMD ["sh", "-c", "echo started; exec sleep infinity"]
