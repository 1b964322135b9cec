# Sourced by scripts/cluster and scripts/bench-cluster: throwaway redis-server and PostgreSQL
# in the folder $work, on free loopback ports. The caller keeps the pids in `services` and stops
# them after its nodes (so that rooms can save while the database is up).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# PostgreSQL's binaries, which Debian keeps off PATH.
pgbin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -1)")

# Sets redis_port. Nothing on disk: the product keeps nothing in Redis that PostgreSQL lacks.
start_redis() {
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    --loglevel warning >"$work/redis.log" 2>&1 &
  services+=($!)
}

# Sets pg_port. initdb refuses root, so the server runs as the postgres user then. Arguments go
# to postgres (e.g. `-c max_connections=300`).
start_postgres() {
  [ -x "$pgbin/postgres" ] || { echo "install postgresql (Debian package)" >&2; exit 1; }
  pg_port=$(free_port)
  local as_pg=()
  if [ "$(id -u)" -eq 0 ]; then as_pg=(runuser -u postgres --); chown postgres "$work"; fi
  "${as_pg[@]}" "$pgbin/initdb" -D "$work/pg" --auth=trust --username=postgres --no-sync >/dev/null
  "${as_pg[@]}" "$pgbin/postgres" -D "$work/pg" -p "$pg_port" -k "$work" \
    -c listen_addresses=127.0.0.1 "$@" >"$work/pg.log" 2>&1 &
  services+=($!)
  until "$pgbin/pg_isready" -q -h 127.0.0.1 -U postgres -p "$pg_port"; do sleep 0.2; done
}

# Creates database $1.
create_database() {
  "$pgbin/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres -c "CREATE DATABASE $1" >/dev/null
}
