#!/usr/bin/env bash
# Starts PostgreSQL and RabbitMQ when they are not running, and waits until both answer.
set -euo pipefail

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # port name seconds
  for _ in $(seq 1 $(( $3 * 5 ))); do
    if answers "$1"; then return 0; fi
    sleep 0.2
  done
  echo "$2 did not answer on port $1 within $3 s" >&2
  return 1
}

if ! answers 5432; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
fi
wait_for 5432 PostgreSQL 60
for _ in $(seq 1 300); do
  if psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then break; fi
  sleep 0.2
done

if ! answers 5672; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached
fi
wait_for 5672 RabbitMQ 120
