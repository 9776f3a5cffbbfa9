# The portal as a slim, non-root image. Configure it with PORTAL_* variables (see README).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# WeasyPrint renders PDFs with Pango and HarfBuzz; DejaVu gives it fonts.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/portal
COPY pyproject.toml README.md config.yaml ./
COPY app ./app
COPY ports ./ports
COPY adapters ./adapters
COPY templates ./templates
# Installed in place: config.yaml and templates/ are read from next to the code.
RUN pip install -e . \
 && useradd --system --uid 10001 --home-dir /srv/portal --shell /usr/sbin/nologin portal \
 && mkdir -p /var/lib/portal \
 && chown portal /var/lib/portal

USER portal
ENV PORTAL_DATA_DIR=/var/lib/portal \
    PORTAL_SERVER__HOST=0.0.0.0
VOLUME ["/var/lib/portal"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=3s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2)"]

CMD ["portal", "serve"]
