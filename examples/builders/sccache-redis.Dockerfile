# A builder of your own on top of factory's: name this file in images.toml
#
#     [builder]
#     dockerfile = "sccache-redis.Dockerfile"
#
# and factory builds its own builder first and passes its tag as FACTORY_BUILDER. This one adds
# Debian's unstable sccache, built with Redis and the other remote backends ([cache] backend =
# "redis"); trixie's sccache, in factory's builder, stores on the local disk only. The suite is
# added beside the base's own apt sources (either format); Check-Valid-Until is off for a
# machine whose clock is ahead of unstable's Release file.
ARG FACTORY_BUILDER=factory-builder
FROM ${FACTORY_BUILDER}
RUN set -eu; \
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then \
      awk -v RS= 'NR == 1' /etc/apt/sources.list.d/debian.sources \
        | sed -E 's/^Suites:.*/Suites: unstable/' > /etc/apt/sources.list.d/unstable.sources; \
    else \
      grep -E '^deb [^#]* trixie main' /etc/apt/sources.list | head -n1 \
        | sed -E 's/ trixie main/ unstable main/' > /etc/apt/sources.list.d/unstable.list; \
    fi; \
    printf 'Acquire::Check-Valid-Until "false";\n' > /etc/apt/apt.conf.d/99unstable; \
    apt-get update; \
    apt-get install -y --no-install-recommends -t unstable sccache; \
    rm -rf /var/lib/apt/lists/*; \
    sccache --help | grep -Eq 'Redis: +true'
