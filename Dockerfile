# syntax=docker/dockerfile:1
# passgate container image: `docker build -t passgate .` (docs/deploy.md).
# Two stages: the build stage has the compilers for the two native modules (argon2, better-sqlite3) and
# TypeScript; the runtime stage has only Node 22 LTS, the compiled code and the production dependencies.

FROM node:22-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# node-gyp compiles against the headers that ship in the image instead of downloading them.
ENV npm_config_nodedir=/usr/local
WORKDIR /build
COPY package.json package-lock.json ./
# Scripts off: `prepare` (tsc) needs the sources, copied below; then build only the native modules.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild argon2 better-sqlite3
COPY tsconfig.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:22-bookworm-slim AS runtime
# The environment overrides the configuration file: data in the volume, and the ops port reachable from outside
# the container (its default, 127.0.0.1, would be the container's own loopback); publish it to monitoring only.
ENV NODE_ENV=production \
    PASSGATE_DATA_DIR=/var/lib/passgate \
    PASSGATE_OPS__HOST=0.0.0.0
# A fixed, non-root uid/gid (10001), so volumes and secret files can be chowned to it.
RUN groupadd --system --gid 10001 passgate \
 && useradd --system --uid 10001 --gid passgate --home-dir /var/lib/passgate --shell /usr/sbin/nologin passgate \
 && mkdir -p /var/lib/passgate /etc/passgate \
 && chown passgate:passgate /var/lib/passgate \
 && chmod 0700 /var/lib/passgate
WORKDIR /app
COPY --from=build /build/package.json ./
COPY --from=build /build/node_modules ./node_modules
COPY --from=build /build/dist ./dist
COPY bin ./bin
COPY config/passgate.example.yaml /etc/passgate/passgate.example.yaml
# Numeric, so Kubernetes runAsNonRoot can verify it without runAsUser.
USER 10001:10001
# The embedded store, the generated pepper and a self-signed certificate live here (with Redis: only the latter).
VOLUME ["/var/lib/passgate"]
# SMTP submission (STARTTLS), SMTPS, IMAP (STARTTLS), IMAPS, and the ops port (/metrics, /healthz, /readyz).
EXPOSE 587 465 143 993 9465
# No curl in the slim image: Node itself asks the ops port (set PASSGATE_OPS__PORT if you move it).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PASSGATE_OPS__PORT || 9465) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Node runs as PID 1 and handles SIGTERM itself (graceful drain, docs/deploy.md); the same flag as bin/passgate.js.
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/bin/passgate.js"]
CMD ["serve"]
