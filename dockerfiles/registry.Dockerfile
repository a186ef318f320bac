# factory's local registry: the CNCF distribution registry from Debian's docker-registry package,
# on the same bootstrapped Debian base as the builder. Legacy-builder compatible: no syntax
# directive, no RUN --mount. The base's own apt sources are used as they are.
ARG BASE=debian:trixie-slim
FROM ${BASE}

SHELL ["/bin/sh", "-eu", "-c"]
ENV DEBIAN_FRONTEND=noninteractive

RUN apt-get update \
 && apt-get install -y --no-install-recommends docker-registry ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/registry /etc/factory-registry \
 && chown docker-registry:docker-registry /var/lib/registry

# config.yml: no auth, filesystem storage under the volume, deletes enabled (the default).
# htpasswd.yml: the same with htpasswd auth; mount a bcrypt htpasswd file at
# /etc/factory-registry/htpasswd and pass this file as the command.
COPY registry/config.yml registry/htpasswd.yml /etc/factory-registry/

USER docker-registry
VOLUME /var/lib/registry
EXPOSE 5000
ENTRYPOINT ["/usr/bin/docker-registry", "serve"]
CMD ["/etc/factory-registry/config.yml"]
