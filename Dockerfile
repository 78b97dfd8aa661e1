# deploy-anywhere: one image that trains, exports and serves (the service by default).
#
#   docker build -t deploy-anywhere .
#   docker run --rm -p 127.0.0.1:8000:8000 -v "$PWD/models:/models:ro" deploy-anywhere
#   docker run --rm -v artifacts:/artifacts deploy-anywhere train --out /artifacts/mnist --overwrite
#   docker run --rm -v artifacts:/artifacts -v models:/models deploy-anywhere export /artifacts/mnist --repository /models --name mnist
#
# Classic builder only (no BuildKit syntax), so it builds with plain `docker build` and Compose v1.
# Configuration: SERVICE_* environment variables (docs/deploy.md). Layers are ordered so code changes
# only rebuild the last, small project layer.

# --- onnxruntime-web for the web page: the version and checksum pinned in package-lock.json -------
FROM python:3.11-slim AS web
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /web
COPY package-lock.json .npmrc docker/fetch_ort_web.py service/ui.py ./
# `npm pack` fetches only the onnxruntime-web tarball (no onnxruntime-node, no install scripts);
# fetch_ort_web.py checks it against the lockfile's sha512 and keeps only the files the page loads
# (the module service/ui.py names as ORT_ENTRY, its WebAssembly loader and binary).
# Ref: https://docs.npmjs.com/cli/commands/npm-pack
RUN python3 fetch_ort_web.py package-lock.json ui.py /ort-web

# --- Python dependencies into a virtual environment: the layer that changes least ------------------
FROM python:3.11-slim AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The runtime requirements of pyproject.toml at the exact versions of constraints.txt; rebuilt only
# when one of these two files changes. pip byte-compiles what it installs (the non-root runtime
# never writes .pyc files), then leaves: nothing installs packages at run time. The .pth file puts
# the project (next stage) on the venv's path.
# Ref: https://pip.pypa.io/en/stable/user_guide/#constraints-files , https://docs.python.org/3/library/site.html
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
    && pip install -q -c constraints.txt -r requirements.txt \
    && pip check \
    && pip uninstall -q -y pip setuptools \
    && echo /opt/deploy-anywhere > "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/deploy-anywhere.pth"

# --- The project: a regular (non-editable) install in its own folder, so a code change rebuilds ---
# --- (and ships) a ~15 MB layer instead of the whole venv ------------------------------------------
FROM deps AS project
COPY README.md ./
COPY contracts ./contracts
COPY trainer ./trainer
COPY exporter ./exporter
COPY service ./service
# The base image's pip builds the wheel (setuptools from PyPI in an isolated build environment);
# the venv's python then imports everything the three commands need, as a smoke test.
# Ref: https://pip.pypa.io/en/stable/cli/pip_install/#cmdoption-t
RUN /usr/local/bin/pip install -q --no-deps --target /opt/deploy-anywhere . \
    && rm -rf /opt/deploy-anywhere/bin \
    && python -c "import importlib.metadata as m, service.app, trainer.cli, exporter.export; print('deploy-anywhere', m.version('deploy-anywhere'))"

# --- Runtime: the venv and the web runtime on a clean base; no compilers, no caches ---------------
FROM python:3.11-slim
LABEL org.opencontainers.image.title="deploy-anywhere" \
      org.opencontainers.image.description="Train once, deploy anywhere: MLP trainer, ONNX exporter and a TF Serving + Open Inference Protocol service" \
      org.opencontainers.image.licenses="Apache-2.0"
# tini as PID 1 forwards SIGTERM to the process it runs and reaps zombies (uvicorn workers,
# training jobs that install no signal handler). Named volumes start as a copy of the image's
# folder, owner included, so /models and /artifacts belong to the non-root user.
# Ref: https://github.com/krallin/tini#why-tini , https://docs.docker.com/engine/storage/volumes/#populate-a-volume-using-a-container
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
    && useradd --uid 10001 --user-group --create-home --home-dir /home/app --shell /usr/sbin/nologin app \
    && mkdir -p /models /artifacts \
    && chown app:app /models /artifacts
COPY --from=deps /opt/venv /opt/venv
COPY --from=web /ort-web /opt/onnxruntime-web
COPY --from=project /opt/deploy-anywhere /opt/deploy-anywhere
COPY docker/entrypoint.sh docker/healthcheck.py /usr/local/lib/deploy-anywhere/
# ORT_DISABLE_TELEMETRY: onnxruntime 1.30 otherwise writes a telemetry device id and session files
# (~/.cache/Microsoft, ./.ses, /tmp/mat-debug-*.log) and, on a read-only root, logs a non-JSON
# warning for each session it creates.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SERVICE_HOST=0.0.0.0 \
    SERVICE_PORT=8000 \
    SERVICE_REPOSITORY=/models \
    SERVICE_ORT_WEB_DIR=/opt/onnxruntime-web \
    MPLCONFIGDIR=/tmp/matplotlib \
    ORT_DISABLE_TELEMETRY=1
USER app
WORKDIR /home/app
# The model repository (<name>/<version>/model.onnx); /artifacts holds trained models between jobs.
VOLUME ["/models", "/artifacts"]
EXPOSE 8000
# Ready = every model loaded and warmed up (V2 readiness), checked with the standard library only.
# Ref: https://docs.docker.com/reference/dockerfile/#healthcheck
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "/usr/local/lib/deploy-anywhere/healthcheck.py"]
ENTRYPOINT ["tini", "--", "/usr/local/lib/deploy-anywhere/entrypoint.sh"]
CMD ["serve"]
