#!/usr/bin/env bash
# Bring up everything the test suite needs on a Debian 12 machine without systemd, idempotently:
# packages, dockerd, a single-node Swarm, a registry on 127.0.0.1:5000, PostgreSQL 15 with the
# test role and database, the busybox test images, two extra Docker engines for fleet tests (one
# behind an sshd on 127.0.0.1, for ssh://), the project's .venv, and a virtualenv with Ansible for
# the XAPI simulator's client tests.
# Safe to re-run: what runs is left alone, what is missing is installed or started.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

REGISTRY=127.0.0.1:5000
REGISTRY_DIR=/var/lib/bojdeploy-test-registry
IMAGE_PREFIX=$REGISTRY/bojdeploy-test
PG_HOST=127.0.0.1
PG_PORT=5432

# Runs from several checkouts on one machine must not race to start the same daemons.
# Daemons get "9>&-" so that they do not inherit the lock and hold it forever.
LOCK=/run/lock/bojdeploy-setup.lock
mkdir -p "${LOCK%/*}"
exec 9>"$LOCK"
flock -w 600 9 || { echo "setup-env: $LOCK still held after 600s" >&2; exit 1; }

# Debian's CLI, the same version as its dockerd (a newer CLI may come first on PATH).
docker() {
    /usr/bin/docker "$@"
}

fail() {
    echo "setup-env: $*" >&2
    exit 1
}

# quiet CMD...: run CMD, showing its output only if it fails.
quiet() {
    local out
    if ! out=$("$@" 2>&1); then
        printf '%s\n' "$out" >&2
        fail "failed: $*"
    fi
}

# daemon LOG CMD...: start CMD in its own session, detached from this script; prints its pid.
daemon() {
    local log=$1
    shift
    (cd / && exec setsid "$@" </dev/null >"$log" 2>&1 9>&-) &
    echo $!
}

# wait_up PID LOG WHAT CMD...: retry CMD once a second, for up to 60s and while PID lives;
# on failure show the end of LOG.
wait_up() {
    local pid=$1 log=$2 what=$3
    shift 3
    for _ in $(seq 60); do
        "$@" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 1
    done
    tail -n 20 "$log" >&2 || true
    fail "$what did not come up (log: $log)"
}

# registry_status PATH [ACCEPT]: HTTP status of a HEAD request to the registry, 000 if unreachable.
# Plain bash, because curl may be missing on a fresh machine.
registry_status() {
    local status=000
    if { exec 3<>"/dev/tcp/${REGISTRY%:*}/${REGISTRY#*:}"; } 2>/dev/null; then
        printf 'HEAD %s HTTP/1.0\r\nHost: %s\r\nAccept: %s\r\n\r\n' "$1" "$REGISTRY" "${2:-*/*}" >&3
        read -r -t 5 _ status _ <&3 || status=000
        exec 3<&-
    fi
    echo "$status"
}

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

install_packages() {
    local missing=() pkg
    for pkg in docker.io docker-registry busybox-static git debootstrap; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
    command -v pg_ctlcluster >/dev/null || missing+=(postgresql-15)
    command -v promtool >/dev/null || missing+=(prometheus)  # promtool checks the relay's /metrics
    command -v chromium >/dev/null || missing+=(chromium)  # the dashboard's browser tests
    command -v prometheus-pushgateway >/dev/null || missing+=(prometheus-pushgateway)  # tests push to it
    [ -x /usr/sbin/sshd ] || missing+=(openssh-server) # ssh:// Docker hosts in fleet tests
    if [ ${#missing[@]} -eq 0 ]; then
        echo "packages: all present"
        return
    fi
    quiet apt-get update -q
    quiet env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    echo "packages: installed ${missing[*]}"
}

docker_up() {
    docker info >/dev/null 2>&1
}

start_dockerd() {
    local pid state=started
    if docker_up; then
        echo "docker: running ($(docker version --format '{{.Server.Version}}'))"
        return
    fi
    pid=$(cat /var/run/docker.pid 2>/dev/null || true)
    if [ -n "$pid" ] && grep -qsx dockerd "/proc/$pid/comm"; then
        state="started by pid $pid"
    else
        rm -f /var/run/docker.pid # stale: its process is gone
        pid=$(daemon /var/log/dockerd.log dockerd)
    fi
    wait_up "$pid" /var/log/dockerd.log dockerd docker_up
    echo "docker: $state ($(docker version --format '{{.Server.Version}}'))"
}

init_swarm() {
    if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" = active ]; then
        echo "swarm: active"
        return
    fi
    quiet docker swarm init --advertise-addr 127.0.0.1
    echo "swarm: initialised (single node, 127.0.0.1)"
}

registry_up() {
    [ "$(registry_status /v2/)" = 200 ]
}

start_registry() {
    local pid log=/var/log/bojdeploy-test-registry.log
    mkdir -p "$REGISTRY_DIR"
    cat >"$REGISTRY_DIR/config.yml" <<EOF
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $REGISTRY_DIR}, delete: {enabled: true}}
http: {addr: $REGISTRY}
EOF
    if registry_up; then
        echo "registry: running on $REGISTRY"
        return
    fi
    pid=$(daemon "$log" docker-registry serve "$REGISTRY_DIR/config.yml")
    wait_up "$pid" "$log" registry registry_up
    echo "registry: started on $REGISTRY"
}

# as_postgres CMD...: run CMD as the postgres user, from a directory it can read.
as_postgres() {
    (cd / && runuser -u postgres -- "$@")
}

start_postgres() {
    local state=running
    pg_lsclusters -h | grep -q '^15 *main ' || quiet pg_createcluster 15 main
    if ! pg_ctlcluster 15 main status >/dev/null 2>&1; then
        quiet pg_ctlcluster 15 main start 9>&- # waits until it accepts connections; must not inherit the lock
        state=started
    fi
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" ||
        fail "postgres is not accepting connections on $PG_HOST:$PG_PORT"
    as_postgres psql -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bojdeploy') THEN
        CREATE ROLE bojdeploy;
    END IF;
END $$;
ALTER ROLE bojdeploy LOGIN SUPERUSER PASSWORD 'bojdeploy';
SELECT 'CREATE DATABASE bojdeploy_test OWNER bojdeploy'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'bojdeploy_test') \gexec
SQL
    echo "postgres: $state (15/main on $PG_HOST:$PG_PORT, db bojdeploy_test, role bojdeploy)"
}

image_missing() {
    local name=${1%:*} tag=${1#*:}
    local accept='application/vnd.docker.distribution.manifest.v2+json'
    [ "$(registry_status "/v2/bojdeploy-test/$name/manifests/$tag" "$accept")" != 200 ]
}

# build_image REF CMD_JSON [INDEX_TEXT]: import a busybox rootfs as REF and push it.
# Without INDEX_TEXT, /www is empty, so httpd answers 404 and a wget healthcheck fails.
build_image() {
    local ref=$1 cmd=$2 index=${3:-} root applet
    root=$(mktemp -d)
    mkdir -p "$root/bin" "$root/etc" "$root/www" "$root/tmp"
    cp /bin/busybox "$root/bin/"
    for applet in sh httpd sleep echo wget cat false true ls env hostname id; do
        ln -s busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    [ -z "$index" ] || echo "$index" >"$root/www/index.html"
    tar -C "$root" -c . | quiet docker import -c "CMD $cmd" - "$ref"
    rm -rf "$root"
    quiet docker push "$ref"
}

push_test_images() {
    local httpd='["/bin/httpd","-f","-p","80","-h","/www"]' pushed=()
    if image_missing web:1; then
        build_image "$IMAGE_PREFIX/web:1" "$httpd" "version 1"
        pushed+=(web:1)
    fi
    if image_missing web:2; then
        build_image "$IMAGE_PREFIX/web:2" "$httpd" "version 2"
        pushed+=(web:2)
    fi
    if image_missing crash:1; then
        build_image "$IMAGE_PREFIX/crash:1" '["/bin/false"]'
        pushed+=(crash:1)
    fi
    if image_missing unhealthy:1; then
        build_image "$IMAGE_PREFIX/unhealthy:1" "$httpd"
        pushed+=(unhealthy:1)
    fi
    if [ ${#pushed[@]} -eq 0 ]; then
        echo "images: present in $IMAGE_PREFIX (web:1 web:2 crash:1 unhealthy:1)"
    else
        echo "images: pushed to $IMAGE_PREFIX: ${pushed[*]}"
    fi
}

make_venv() {
    local stamp=.venv/.setup-env-installed
    [ -x .venv/bin/python ] || quiet python3 -m venv .venv
    if [ -f "$stamp" ] && [ ! pyproject.toml -nt "$stamp" ]; then
        echo "venv: up to date (.venv)"
        return
    fi
    quiet .venv/bin/python -m pip install -q -e '.[dev]'
    touch "$stamp"
    echo "venv: installed .[dev] into .venv"
}

# Ansible (with community.general) and the XenAPI SDK in a virtualenv of their own, outside the
# checkout so that every checkout shares it: a ~55 MB download, ~550 MB installed. The stamp is
# a copy of the requirements it was made from; tests/testing/ansible_env.py reads it too.
make_ansible_venv() {
    local venv=${BOJDEPLOY_ANSIBLE_VENV:-$HOME/.cache/bojdeploy-ansible}
    local req=tests/testing/ansible/requirements.txt
    if [ -x "$venv/bin/ansible-playbook" ] && cmp -s "$req" "$venv/.setup-env-installed"; then
        echo "ansible: up to date ($venv)"
        return
    fi
    mkdir -p "${venv%/*}"
    [ -x "$venv/bin/python" ] || quiet python3 -m venv "$venv"
    quiet "$venv/bin/python" -m pip install -q -r "$req"
    cp "$req" "$venv/.setup-env-installed"
    echo "ansible: installed $(grep -m1 '^ansible' "$req") into $venv"
}

# Two extra Docker engines beside the default one, each a "host" of a fleet: its own bridge,
# socket, data and exec roots under $ENGINES (stable, so a second run finds them running), no
# iptables rules (published ports go through docker-proxy on 127.0.0.1). tests/fleet.py reads
# the same paths. Never --bridge none: that deletes docker0, which the default engine needs.
ENGINES=/var/lib/bojdeploy-engines
SSH_PORT=2222

engine_up() {
    docker -H "unix://$ENGINES/$1/docker.sock" info >/dev/null 2>&1
}

# start_engine NAME BRIDGE CIDR
start_engine() {
    local name=$1 bridge=$2 cidr=$3 dir=$ENGINES/$1 pid state=running image
    mkdir -p "$dir"
    if ! engine_up "$name"; then
        ip link show "$bridge" >/dev/null 2>&1 || {
            quiet ip link add "$bridge" type bridge
            quiet ip addr add "$cidr" dev "$bridge"
        }
        quiet ip link set "$bridge" up
        echo '{}' >"$dir/daemon.json"
        rm -f "$dir/docker.sock" "$dir/pid"
        pid=$(daemon "$dir/log" dockerd --config-file "$dir/daemon.json" \
            --host "unix://$dir/docker.sock" --data-root "$dir/data" --exec-root "$dir/exec" \
            --pidfile "$dir/pid" --bridge "$bridge" --iptables=false --ip-masq=false)
        wait_up "$pid" "$dir/log" "docker engine $name" engine_up "$name"
        state=started
    fi
    for image in web:1 web:2 crash:1 unhealthy:1; do
        docker -H "unix://$dir/docker.sock" image inspect "$IMAGE_PREFIX/$image" >/dev/null 2>&1 ||
            quiet docker -H "unix://$dir/docker.sock" pull "$IMAGE_PREFIX/$image"
    done
    echo "engine $name: $state (unix://$dir/docker.sock, bridge $bridge $cidr)"
}

sshd_up() {
    ssh -F "$ENGINES/ssh/client_config" bojdeploy-engine-2 true >/dev/null 2>&1
}

# An sshd on 127.0.0.1:$SSH_PORT whose sessions reach engine-2 (SetEnv DOCKER_HOST), with a
# generated host key and client key; ~/.ssh/config includes the alias bojdeploy-engine-2 (the
# docker SDK always passes a port: ssh://bojdeploy-engine-2:$SSH_PORT) so
# that the docker SDK's ssh:// (it runs the ssh client) works without prompts.
start_sshd() {
    local dir=$ENGINES/ssh pid state=running
    mkdir -p "$dir" /run/sshd ~/.ssh
    chmod 700 "$dir" ~/.ssh
    [ -f "$dir/host_key" ] || quiet ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
    [ -f "$dir/id_ed25519" ] || quiet ssh-keygen -q -t ed25519 -N '' -f "$dir/id_ed25519"
    cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
    echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$dir/host_key.pub")" >"$dir/known_hosts"
    cat >"$dir/sshd_config" <<EOF
ListenAddress 127.0.0.1:$SSH_PORT
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
SetEnv DOCKER_HOST=unix://$ENGINES/engine-2/docker.sock
MaxStartups 100:30:200
MaxSessions 100
EOF
    cat >"$dir/client_config" <<EOF
Host bojdeploy-engine-2
    HostName 127.0.0.1
    Port $SSH_PORT
    User root
    IdentityFile $dir/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $dir/known_hosts
    StrictHostKeyChecking yes
    BatchMode yes
EOF
    touch ~/.ssh/config
    grep -qx "Include $dir/client_config" ~/.ssh/config ||
        printf 'Include %s\n%s' "$dir/client_config" "$(cat ~/.ssh/config)" >~/.ssh/config
    if ! sshd_up; then
        [ -f "$dir/sshd.pid" ] && kill "$(cat "$dir/sshd.pid")" 2>/dev/null || true
        pid=$(daemon "$dir/log" /usr/sbin/sshd -D -e -f "$dir/sshd_config")
        wait_up "$pid" "$dir/log" sshd sshd_up
        state=started
    fi
    echo "sshd: $state (127.0.0.1:$SSH_PORT -> engine-2, ssh://bojdeploy-engine-2:$SSH_PORT)"
}

# lock_holders: pids other than this script that hold the set-up lock as fd 9 (a daemon that
# inherited it would make every later run wait for it).
lock_holders() {
    local f pid out=()
    for f in /proc/[0-9]*/fd/9; do
        pid=${f#/proc/}
        pid=${pid%%/*}
        [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] && continue
        [ "$(readlink "$f" 2>/dev/null)" = "$LOCK" ] && out+=("$pid")
    done
    echo "${out[*]}"
}

check_lock() {
    local holders
    holders=$(lock_holders)
    [ -z "$holders" ] ||
        fail "processes $holders inherited $LOCK; later runs would wait for them (stop them, rerun)"
}

install_packages
start_dockerd
init_swarm
start_registry
start_postgres
push_test_images
start_engine engine-1 bojeng1 172.31.251.1/24
start_engine engine-2 bojeng2 172.31.252.1/24
start_sshd
make_venv
make_ansible_venv
check_lock
