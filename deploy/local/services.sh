#!/usr/bin/env bash
# Local real servers for the production shape: PostgreSQL (Debian's packages) and Apache Kafka 4.x
# (official jars from Maven Central, KRaft single node, run on the machine's Java). Idempotent: reuses
# servers already up, caches everything under .local/ (git-ignored). Honours SWITCHBOARD_DATABASE_URL and
# SWITCHBOARD_KAFKA_BOOTSTRAP: when given, that server is used as is and nothing is started for it.
#
#   deploy/local/services.sh up      start (or reuse) both, print the env to use them
#   deploy/local/services.sh down    stop both
#   deploy/local/services.sh env     print the env lines only
#   deploy/local/services.sh tls-up  start (or reuse) a second PostgreSQL and Kafka that take TLS only, with
#                                    certificates from a CA generated into .local/tls (see tls_up below)
#   deploy/local/services.sh tls-down  stop those two
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
state="$root/.local"
pg_port=${SWITCHBOARD_LOCAL_PG_PORT:-15432}
kafka_port=${SWITCHBOARD_LOCAL_KAFKA_PORT:-19092}
controller_port=$((kafka_port + 1))
# the fault suite's proxied listeners (kafka/server.properties): the broker listens on +10 and +11 and
# advertises +20 and +21, where the suite's Toxiproxy listens in front of them
proxied_ports=(-e "s#@APORT@#$((kafka_port + 10))#g" -e "s#@BPORT@#$((kafka_port + 11))#g"
  -e "s#@AXPORT@#$((kafka_port + 20))#g" -e "s#@BXPORT@#$((kafka_port + 21))#g")
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

pg_prepare_dir() { # dir: a cluster's directory, owned by postgres when we are root
  mkdir -p "$1"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres:postgres "$1"
    # postgres must be able to reach its data dir through the checkout's parents
    local p="$1"; while [ "$p" != / ]; do p=$(dirname "$p"); chmod o+x "$p" 2>/dev/null || true; done
  fi
}

pg_start() { # dir port name server-options: start the cluster in dir/data on 127.0.0.1 only, no unix socket
  log "starting $3 on 127.0.0.1:$2"
  as_pg "$(pg_bin)/pg_ctl" -D "$1/data" -l "$1/postgres.log" -w -t 60 \
    -o "-p $2 -c listen_addresses=127.0.0.1 -c unix_socket_directories='' $4" start >/dev/null
  wait_port "$2" 30 "$3"
}

pg_ensure_database() { # port [env NAME=value...]: create the switchboard database unless it exists
  local port="$1" bin; shift; bin=$(pg_bin)
  as_pg "$@" "$bin/psql" -h 127.0.0.1 -p "$port" -U switchboard -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='switchboard'" | grep -q 1 \
    || as_pg "$@" "$bin/createdb" -h 127.0.0.1 -p "$port" -U switchboard switchboard
}

postgres_up() {
  if [ -n "${SWITCHBOARD_DATABASE_URL:-}" ]; then return 0; fi
  if port_open "$pg_port"; then return 0; fi
  ensure_postgres_installed
  local bin; bin=$(pg_bin)
  pg_prepare_dir "$pg_dir"
  if [ ! -f "$pg_dir/data/PG_VERSION" ]; then
    log "creating PostgreSQL cluster in $pg_dir/data"
    as_pg "$bin/initdb" -D "$pg_dir/data" -U switchboard --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  # per-statement counts for the tests that bound the statements of a batch (tests/integration/test_batch_cost.py)
  grep -q "^shared_preload_libraries = 'pg_stat_statements'" "$pg_dir/data/postgresql.conf" \
    || echo "shared_preload_libraries = 'pg_stat_statements'" | as_pg tee -a "$pg_dir/data/postgresql.conf" >/dev/null
  pg_start "$pg_dir" "$pg_port" PostgreSQL "-c max_connections=200 -c fsync=on"
  pg_ensure_database "$pg_port"
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
  sed -e "s#@DATA@#$kafka_dir/data#" -e "s#@PORT@#$kafka_port#g" -e "s#@CPORT@#$controller_port#g" "${proxied_ports[@]}" \
    "$here/kafka/server.properties" > "$kafka_dir/server.properties"
  if [ ! -f "$kafka_dir/data/meta.properties" ]; then
    log "formatting Kafka KRaft storage"
    java -cp "$kafka_dir/libs/*" -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -Dkafka.logs.dir="$kafka_dir" \
      kafka.tools.StorageTool format -t "$(java -cp "$kafka_dir/libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null)" \
      -c "$kafka_dir/server.properties" --standalone >/dev/null
  fi
  log "starting Apache Kafka (KRaft) on 127.0.0.1:$kafka_port"
  # a fixed heap, touched at start (Kafka's own advice for brokers): the broker's resident size is what it will
  # be from the first second, not a heap that grows after each restart until it reaches its limit
  KAFKA_LOG_DIR="$kafka_dir" nohup java -Xms2g -Xmx2g -XX:+AlwaysPreTouch -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -Dkafka.logs.dir="$kafka_dir" \
    -cp "$kafka_dir/libs/*" kafka.Kafka "$kafka_dir/server.properties" >"$kafka_dir/kafka.out" 2>&1 &
  echo $! >"$kafka_dir/kafka.pid"
  wait_port "$kafka_port" 90 Kafka || { tail -n 30 "$kafka_dir/kafka.out" >&2; return 1; }
}

kafka_stop() { # dir: the broker started in dir (its pid in dir/kafka.pid), given 30 s to stop, then killed
  [ -f "$1/kafka.pid" ] || return 0
  local pid; pid=$(cat "$1/kafka.pid")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$1/kafka.pid"
}

kafka_down() { kafka_stop "$kafka_dir"; }

print_env() {
  echo "export SWITCHBOARD_DATABASE_URL=${SWITCHBOARD_DATABASE_URL:-postgresql+asyncpg://switchboard@127.0.0.1:$pg_port/switchboard}"
  echo "export SWITCHBOARD_KAFKA_BOOTSTRAP=${SWITCHBOARD_KAFKA_BOOTSTRAP:-127.0.0.1:$kafka_port}"
}

# -- TLS servers: a second PostgreSQL cluster and a second Kafka node, apart from the plain ones above -------
# PostgreSQL on $tls_pg_port: ssl = on, pg_hba takes `hostssl` with scram-sha-256 only. Kafka on
# $tls_kafka_port: SASL_SSL only (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER with unsigned test tokens),
# its controller on $tls_controller_port.
# Both present a certificate for 127.0.0.1 and localhost signed by the CA in .local/tls/ca.crt; the user
# `switchboard` has the password in .local/tls/password on both.
tls_dir="$state/tls"
tls_pg_port=${SWITCHBOARD_LOCAL_TLS_PG_PORT:-15433}
tls_kafka_port=${SWITCHBOARD_LOCAL_TLS_KAFKA_PORT:-19094}
tls_controller_port=$((tls_kafka_port + 1))
tls_pg_dir="$state/postgres-tls"
tls_kafka_dir="$state/kafka-tls"

tls_certs() {
  [ -f "$tls_dir/.complete" ] && return 0
  command -v openssl >/dev/null || { log "openssl is needed to make the test CA (apt-get install openssl)"; return 1; }
  command -v keytool >/dev/null || { log "keytool (Java 17+) is needed for Kafka's keystore"; return 1; }
  # a new CA and password: the TLS servers start afresh, none keeps older certificates or credentials
  tls_down; rm -rf "$tls_pg_dir" "$tls_kafka_dir"
  log "generating a test CA, server certificate and password in $tls_dir"
  rm -rf "$tls_dir"; mkdir -p "$tls_dir"; chmod 711 "$tls_dir" # others may reach ca.crt, not list or read the rest
  (
    cd "$tls_dir"
    openssl rand -hex 16 | tr -d '\n' >password
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Switchboard local test CA" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.crt 2>/dev/null
    openssl pkcs12 -export -in server.crt -inkey server.key -certfile ca.crt -name server \
      -passout "pass:$(cat password)" -out server.p12
    keytool -importcert -noprompt -alias ca -file ca.crt -storetype PKCS12 \
      -keystore truststore.p12 -storepass "$(cat password)" >/dev/null 2>&1
    rm -f server.csr server.ext ca.srl; chmod 600 ca.key server.key password server.p12 truststore.p12
  )
  chmod 644 "$tls_dir/ca.crt"
  touch "$tls_dir/.complete"
}

tls_postgres_up() {
  if port_open "$tls_pg_port"; then return 0; fi
  ensure_postgres_installed
  local bin password; bin=$(pg_bin); password=$(cat "$tls_dir/password")
  pg_prepare_dir "$tls_pg_dir"
  if [ ! -f "$tls_pg_dir/data/PG_VERSION" ]; then
    log "creating the TLS PostgreSQL cluster in $tls_pg_dir/data"
    printf '%s\n' "$password" >"$tls_pg_dir/pw"; [ "$(id -u)" = 0 ] && chown postgres "$tls_pg_dir/pw"
    as_pg "$bin/initdb" -D "$tls_pg_dir/data" -U switchboard --pwfile="$tls_pg_dir/pw" \
      --auth-host=scram-sha-256 --auth-local=reject -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$tls_pg_dir/pw"
    echo "hostssl all all 127.0.0.1/32 scram-sha-256" | as_pg tee "$tls_pg_dir/data/pg_hba.conf" >/dev/null
  fi
  # the server's key must belong to the server's user and be readable by it alone
  install -m 600 "$tls_dir/server.key" "$tls_pg_dir/data/server.key"
  install -m 644 "$tls_dir/server.crt" "$tls_pg_dir/data/server.crt"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$tls_pg_dir/data/server.key" "$tls_pg_dir/data/server.crt"
  pg_start "$tls_pg_dir" "$tls_pg_port" "the TLS PostgreSQL" "-c max_connections=50 -c ssl=on"
  pg_ensure_database "$tls_pg_port" env PGPASSWORD="$password" PGSSLMODE=verify-full PGSSLROOTCERT="$tls_dir/ca.crt"
}

tls_postgres_down() {
  [ -f "$tls_pg_dir/data/postmaster.pid" ] || return 0
  as_pg "$(pg_bin)/pg_ctl" -D "$tls_pg_dir/data" -m fast -w stop >/dev/null || true
}

tls_kafka_up() {
  if port_open "$tls_kafka_port"; then return 0; fi
  command -v java >/dev/null || { log "Java 17+ is needed to run Kafka (apt-get install default-jre-headless)"; return 1; }
  kafka_jars
  local password user_jaas; password=$(cat "$tls_dir/password")
  mkdir -p "$tls_kafka_dir/data"
  user_jaas="username=\"switchboard\" password=\"$password\""
  cat >"$tls_kafka_dir/server.properties" <<EOF
# Single-node Kafka (KRaft) taking SASL_SSL only; written by deploy/local/services.sh tls-up.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$tls_controller_port
listeners=SASL_SSL://127.0.0.1:$tls_kafka_port,CONTROLLER://127.0.0.1:$tls_controller_port
advertised.listeners=SASL_SSL://127.0.0.1:$tls_kafka_port
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required $user_jaas;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_switchboard="$password";
# OAUTHBEARER with Kafka's unsecured-token validator (RFC 7515 alg "none"): tests issue their own tokens
listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location=$tls_dir/server.p12
ssl.keystore.password=$password
ssl.truststore.type=PKCS12
ssl.truststore.location=$tls_dir/truststore.p12
ssl.truststore.password=$password
log.dirs=$tls_kafka_dir/data
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
EOF
  chmod 600 "$tls_kafka_dir/server.properties"
  if [ ! -f "$tls_kafka_dir/data/meta.properties" ]; then
    log "formatting the TLS Kafka's KRaft storage with its SCRAM users"
    java -cp "$kafka_dir/libs/*" -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
      -Dkafka.logs.dir="$tls_kafka_dir" kafka.tools.StorageTool format \
      -t "$(java -cp "$kafka_dir/libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null)" \
      -c "$tls_kafka_dir/server.properties" --standalone \
      --add-scram "SCRAM-SHA-512=[name=switchboard,password=$password]" \
      --add-scram "SCRAM-SHA-256=[name=switchboard,password=$password]" >/dev/null
  fi
  log "starting the TLS Apache Kafka (KRaft, SASL_SSL) on 127.0.0.1:$tls_kafka_port"
  KAFKA_LOG_DIR="$tls_kafka_dir" nohup java -Xms128m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -Dkafka.logs.dir="$tls_kafka_dir" \
    -cp "$kafka_dir/libs/*" kafka.Kafka "$tls_kafka_dir/server.properties" >"$tls_kafka_dir/kafka.out" 2>&1 &
  echo $! >"$tls_kafka_dir/kafka.pid"
  wait_port "$tls_kafka_port" 90 "TLS Kafka" || { tail -n 30 "$tls_kafka_dir/kafka.out" >&2; return 1; }
}

tls_kafka_down() { kafka_stop "$tls_kafka_dir"; }

tls_up() { tls_certs; tls_postgres_up; tls_kafka_up; print_tls_env; }

tls_down() { tls_kafka_down; tls_postgres_down; }

print_tls_env() {
  local password; password=$(cat "$tls_dir/password")
  echo "export LOCAL_TLS_CA=$tls_dir/ca.crt"
  echo "export LOCAL_TLS_PASSWORD=$password"
  echo "export LOCAL_TLS_DATABASE_URL=postgresql+asyncpg://switchboard:$password@127.0.0.1:$tls_pg_port/switchboard"
  echo "export LOCAL_TLS_KAFKA_BOOTSTRAP=127.0.0.1:$tls_kafka_port"
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
  # the TLS-only pair, for tests/integration/test_secure_connections.py; independent of the servers above
  tls-up) tls_up ;;
  tls-down) tls_down ;;
  tls-env) print_tls_env ;;
  *) echo "usage: $0 up|down|env|kafka-up|kafka-down|postgres-up|postgres-down|tls-up|tls-down|tls-env" >&2; exit 2 ;;
esac
