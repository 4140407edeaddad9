# syncd: one container = one shard. Mount a config at /etc/syncd/syncd.toml and pass
# secrets as environment variables (${VAR} in the config). Kubernetes: a StatefulSet whose
# pod ordinal is the shard index; probes on /healthz (liveness) and /readyz (readiness).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md schema.sql ./
COPY syncd ./syncd
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --create-home --home-dir /var/lib/syncd syncd
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY config/syncd.example.toml /etc/syncd/syncd.example.toml
USER syncd
WORKDIR /var/lib/syncd
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["syncd"]
CMD ["run", "--config", "/etc/syncd/syncd.toml"]
