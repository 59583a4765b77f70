# Madoguchi: one node (pages, REST, signaling and the in-process SFU).
FROM python:3.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
COPY sfu ./sfu
COPY client ./client
COPY consult_templates ./consult_templates
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/madoguchi madoguchi \
    && mkdir -p /var/lib/madoguchi && chown madoguchi /var/lib/madoguchi
USER madoguchi
ENV MADOGUCHI_HOST=0.0.0.0 \
    MADOGUCHI_DATA_DIR=/var/lib/madoguchi \
    MADOGUCHI_TEMPLATES_DIR=/app/consult_templates
EXPOSE 8080/tcp 40000-40100/udp
CMD ["madoguchi", "serve"]
