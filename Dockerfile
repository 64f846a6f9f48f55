# wadesk headless gateway: `wadesk --headless` serving the HTTP API on port 8080.
#
#   docker build -t wadesk .
#   docker run -d --name wadesk -p 127.0.0.1:8080:8080 -v wadesk-session:/app/session wadesk
#   docker logs -f wadesk          # the pairing QR code is printed here
#
# Stages: "deps" installs the dependencies (without the desktop extra: no Qt, no keyring)
# into a virtual environment and trims it; "venv" is that environment without pip; "app"
# installs wadesk itself on top of "deps" and keeps just its files. The runtime stage copies
# both onto a fresh base image with libmagic and tini, and nothing else. A change to
# wadesk's code rebuilds only the small "app" part.

ARG PYTHON_IMAGE=python:3.13-slim

FROM ${PYTHON_IMAGE} AS deps
# a failing command on the left of a pipe fails the RUN, too
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src
# The project's dependencies, as pyproject.toml lists them (no extras: no Qt, no keyring).
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > requirements.txt \
 && /opt/venv/bin/pip install --prefer-binary -r requirements.txt \
 && rm requirements.txt
# Trim what the gateway never imports (the self-test in the runtime stage imports everything
# the gateway uses and fails the build if a trim went too far):
# - setuptools: nothing builds packages in the container (pip goes in the "venv" stage);
# - phonenumbers' geocoding data (40 MB of place names; only phonenumbers.geocoder reads it);
# - test suites shipped inside wheels (linkpreview installs a top-level "tests" package),
#   and type stubs (*.pyi), which only type checkers read.
# Then byte-compile everything once, because the runtime user cannot write next to the
# sources (and PYTHONDONTWRITEBYTECODE keeps it from trying).
RUN set -eu; \
    site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
    rm -rf "$site"/setuptools* "$site"/_distutils_hack "$site"/distutils-precedence.pth "$site"/pkg_resources; \
    rm -rf "$site"/phonenumbers/geodata "$site"/tests "$site"/certifi/tests; \
    find "$site" -type f \( -name '*.pyi' -o -name py.typed \) -delete; \
    find /opt/venv -name __pycache__ -type d -prune -exec rm -rf {} +; \
    /opt/venv/bin/python -m compileall -q -j 0 -o 0 "$site" >/dev/null; \
    test -f "$site"/neonize/neonize-linux-"$(uname -m | sed 's/x86_64/amd64/;s/aarch64/arm64/')".so

FROM deps AS venv
RUN set -eu; \
    site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
    /opt/venv/bin/python -m pip uninstall -y pip >/dev/null; \
    rm -rf "$site"/pip "$site"/pip-* /opt/venv/bin/pip*

FROM deps AS app
COPY README.md LICENSE ./
COPY resources ./resources
COPY packaging/third_party_licenses.py ./packaging/
COPY packaging/licenses ./packaging/licenses
COPY wadesk ./wadesk
# THIRD-PARTY-LICENSES: every distribution in the environment wadesk runs from, with the
# license texts they ship; it goes to /usr/share/doc/wadesk/ with wadesk's own LICENSE.
RUN set -eu; \
    /opt/venv/bin/pip install --no-deps --no-compile . >/dev/null; \
    mkdir -p /opt/doc; \
    /opt/venv/bin/python packaging/third_party_licenses.py -o /opt/doc/THIRD-PARTY-LICENSES wadesk; \
    cp LICENSE /opt/doc/LICENSE; \
    site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
    /opt/venv/bin/python -m compileall -q -o 0 "$site"/wadesk >/dev/null; \
    rel=${site#/opt/venv/}; \
    mkdir -p /opt/app/"$rel" /opt/app/bin; \
    cp -a "$site"/wadesk "$site"/wadesk-*.dist-info /opt/app/"$rel"/; \
    cp -a /opt/venv/bin/wadesk /opt/app/bin/


FROM ${PYTHON_IMAGE}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# libmagic (with its database) for python-magic, which neonize imports; tini as PID 1:
# it forwards SIGTERM to wadesk (which shuts down cleanly and exits 0) and reaps children.
# The versions are not pinned (DL3008): they are whatever the base image's Debian release
# serves, and Debian removes a version from its archive when a security update replaces it,
# so a pin would break the build at the next update rather than make it repeatable. Pin the
# base image by digest (--build-arg PYTHON_IMAGE=python:3.13-slim@sha256:...) for that.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libmagic1 tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && groupadd --gid 1001 appuser \
 && useradd --uid 1001 --gid 1001 --no-create-home --home-dir /app --shell /usr/sbin/nologin appuser \
 && mkdir -p /app/session \
 && chown 1001:1001 /app/session \
 && chmod 0700 /app/session

COPY --from=venv /opt/venv /opt/venv
COPY --from=app /opt/app/ /opt/venv/
COPY --from=app /opt/doc/ /usr/share/doc/wadesk/

# Settings (see README "Configuration"): PORT, LOG_LEVEL, LOG_FORMAT, WEBHOOK_URL,
# WEBHOOK_EVENTS, WEBHOOK_SECRET, WADESK_API_TOKEN or WADESK_API_TOKEN_FILE,
# WADESK_SEND_INTERVAL, WADESK_PROXY, WADESK_DEVICE_NAME.
# PYTHON_KEYRING_BACKEND: the gateway keeps its token in the data folder, never in a
# keyring; the null backend makes sure nothing ever probes D-Bus.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WADESK_DATA_DIR=/app/session \
    HOST=0.0.0.0 \
    PORT=8080 \
    PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring

# Fail the build if anything the gateway loads is missing (no network, no Qt).
RUN wadesk --headless --self-test

USER 1001:1001
WORKDIR /app
VOLUME ["/app/session"]
EXPOSE 8080
STOPSIGNAL SIGTERM
# /health answers 200 while the process serves. Python's standard library instead of
# curl; -I ignores PYTHONPATH and friends so the check stays a bare interpreter start.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-I", "-c", "import os,sys,urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT','8080'), timeout=4).status != 200)"]
ENTRYPOINT ["/usr/bin/tini", "--", "wadesk", "--headless"]

# OCI labels, last so that a new date or commit rebuilds no layer. packaging/build_image.py
# fills them in (the version from wadesk/__init__.py, the git commit, the time now).
ARG VERSION=unknown
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=https://github.com/wadesk/wadesk
LABEL org.opencontainers.image.title="wadesk" \
      org.opencontainers.image.description="WhatsApp HTTP gateway (wadesk --headless)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.url="${SOURCE}" \
      org.opencontainers.image.documentation="${SOURCE}#readme" \
      org.opencontainers.image.licenses="Apache-2.0"
