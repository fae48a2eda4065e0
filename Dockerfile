# ML Workbench: one image for the app (Streamlit), the REST server, job workers and the Dask
# scheduler and workers (they must import the same code: a search ships its trials by
# reference). Build: docker build -t ml-workbench .   Run: see compose.yaml and
# docs/scale/containers.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WORKBENCH_HOME=/home/workbench/.workbench

# libgomp1: the OpenMP runtime XGBoost links against (scikit-learn ships its own)
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --user-group workbench

WORKDIR /opt/workbench
# dependencies first, so a code change does not reinstall them
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY pyproject.toml README.md streamlit_app.py ./
COPY .streamlit ./.streamlit
COPY app ./app
COPY core ./core
COPY pages ./pages
COPY data ./data
RUN pip install --no-deps . && chown -R workbench:workbench /opt/workbench

USER workbench
EXPOSE 8001 8501

# the REST server's /health (compose gives the other services their own checks)
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8001/health', timeout=4)"]

# listening beyond loopback needs WORKBENCH_API_TOKEN (or a JWT secret): the server refuses
# to start open to the network otherwise
CMD ["workbench", "serve", "--host", "0.0.0.0", "--port", "8001"]
