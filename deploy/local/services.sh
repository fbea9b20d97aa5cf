#!/usr/bin/env bash
# Local real servers for the production shape: PostgreSQL (Debian's packages) and Apache Kafka 4.x
# (official jars from Maven Central, KRaft single node, run on the machine's Java). Idempotent: reuses
# servers already up, caches everything under .local/ (git-ignored). Honours SWITCHBOARD_DATABASE_URL and
# SWITCHBOARD_KAFKA_BOOTSTRAP: when given, that server is used as is and nothing is started for it.
#
#   deploy/local/services.sh up      start (or reuse) both, print the env to use them
#   deploy/local/services.sh down    stop both
#   deploy/local/services.sh env     print the env lines only
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
state="$root/.local"
pg_port=${SWITCHBOARD_LOCAL_PG_PORT:-15432}
kafka_port=${SWITCHBOARD_LOCAL_KAFKA_PORT:-19092}
controller_port=$((kafka_port + 1))
pg_dir="$state/postgres"
kafka_dir="$state/kafka"

log() { echo "services: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds name
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    port_open "$1" && return 0
    sleep 0.1
  done
  log "$3 did not open port $1 within $2 s"; return 1
}

as_pg() { # run a command as the postgres user when we are root (initdb refuses root)
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && echo "$d" && return 0; done
  return 1
}

ensure_postgres_installed() {
  pg_bin >/dev/null && return 0
  [ "$(id -u)" = 0 ] || { log "PostgreSQL is not installed; run: sudo apt-get install -y postgresql"; return 1; }
  log "installing PostgreSQL from Debian's packages"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

ensure_test_tools() {
  # Dovecot (IMAP) for the email connector's integration test; started by the test itself, not here.
  command -v dovecot >/dev/null || [ -x /usr/sbin/dovecot ] && return 0
  [ "$(id -u)" = 0 ] || { log "Dovecot is missing; run: sudo apt-get install -y dovecot-imapd"; return 0; }
  log "installing Dovecot (IMAP test server) from Debian's packages"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null
}

postgres_up() {
  if [ -n "${SWITCHBOARD_DATABASE_URL:-}" ]; then return 0; fi
  if port_open "$pg_port"; then return 0; fi
  ensure_postgres_installed
  local bin; bin=$(pg_bin)
  mkdir -p "$pg_dir"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres:postgres "$pg_dir"
    # postgres must be able to reach its data dir through the checkout's parents
    local p="$pg_dir"; while [ "$p" != / ]; do p=$(dirname "$p"); chmod o+x "$p" 2>/dev/null || true; done
  fi
  if [ ! -f "$pg_dir/data/PG_VERSION" ]; then
    log "creating PostgreSQL cluster in $pg_dir/data"
    as_pg "$bin/initdb" -D "$pg_dir/data" -U switchboard --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  # per-statement counts for the tests that bound the statements of a batch (tests/integration/test_batch_cost.py)
  grep -q "^shared_preload_libraries = 'pg_stat_statements'" "$pg_dir/data/postgresql.conf" \
    || echo "shared_preload_libraries = 'pg_stat_statements'" | as_pg tee -a "$pg_dir/data/postgresql.conf" >/dev/null
  log "starting PostgreSQL on 127.0.0.1:$pg_port"
  as_pg "$bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/postgres.log" -w -t 60 \
    -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200 -c fsync=on" start >/dev/null
  wait_port "$pg_port" 30 PostgreSQL
  as_pg "$bin/psql" -h 127.0.0.1 -p "$pg_port" -U switchboard -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='switchboard'" | grep -q 1 \
    || as_pg "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U switchboard switchboard
}

postgres_down() {
  [ -f "$pg_dir/data/postmaster.pid" ] || return 0
  as_pg "$(pg_bin)/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null || true
}

kafka_jars() {
  if [ -f "$kafka_dir/libs/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || { log "Maven is needed to fetch the Kafka jars (apt-get install maven)"; return 1; }
  log "fetching Apache Kafka jars from Maven Central (once; cached in $kafka_dir/libs)"
  mkdir -p "$kafka_dir/libs"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$kafka_dir/libs" -DincludeScope=runtime >&2
  touch "$kafka_dir/libs/.complete"
}

kafka_up() {
  if [ -n "${SWITCHBOARD_KAFKA_BOOTSTRAP:-}" ]; then return 0; fi
  if port_open "$kafka_port"; then return 0; fi
  command -v java >/dev/null || { log "Java 17+ is needed to run Kafka (apt-get install default-jre-headless)"; return 1; }
  kafka_jars
  mkdir -p "$kafka_dir/data"
  sed -e "s#@DATA@#$kafka_dir/data#" -e "s#@PORT@#$kafka_port#g" -e "s#@CPORT@#$controller_port#g" \
    "$here/kafka/server.properties" > "$kafka_dir/server.properties"
  if [ ! -f "$kafka_dir/data/meta.properties" ]; then
    log "formatting Kafka KRaft storage"
    java -cp "$kafka_dir/libs/*" -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -Dkafka.logs.dir="$kafka_dir" \
      kafka.tools.StorageTool format -t "$(java -cp "$kafka_dir/libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null)" \
      -c "$kafka_dir/server.properties" --standalone >/dev/null
  fi
  log "starting Apache Kafka (KRaft) on 127.0.0.1:$kafka_port"
  KAFKA_LOG_DIR="$kafka_dir" nohup java -Xms512m -Xmx2g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -Dkafka.logs.dir="$kafka_dir" \
    -cp "$kafka_dir/libs/*" kafka.Kafka "$kafka_dir/server.properties" >"$kafka_dir/kafka.out" 2>&1 &
  echo $! >"$kafka_dir/kafka.pid"
  wait_port "$kafka_port" 90 Kafka || { tail -n 30 "$kafka_dir/kafka.out" >&2; return 1; }
}

kafka_down() {
  [ -f "$kafka_dir/kafka.pid" ] || return 0
  local pid; pid=$(cat "$kafka_dir/kafka.pid")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$kafka_dir/kafka.pid"
}

print_env() {
  echo "export SWITCHBOARD_DATABASE_URL=${SWITCHBOARD_DATABASE_URL:-postgresql+asyncpg://switchboard@127.0.0.1:$pg_port/switchboard}"
  echo "export SWITCHBOARD_KAFKA_BOOTSTRAP=${SWITCHBOARD_KAFKA_BOOTSTRAP:-127.0.0.1:$kafka_port}"
}

case "${1:-up}" in
  up) ensure_test_tools; postgres_up; kafka_up; print_env ;;
  down) kafka_down; postgres_down ;;
  env) print_env ;;
  # one server at a time, for the fault suite (tests/faults): stop and start a broker or the database
  kafka-up) kafka_up ;;
  kafka-down) kafka_down ;;
  postgres-up) postgres_up ;;
  postgres-down) postgres_down ;;
  *) echo "usage: $0 up|down|env|kafka-up|kafka-down|postgres-up|postgres-down" >&2; exit 2 ;;
esac
