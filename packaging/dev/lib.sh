# Shared by packaging/dev/serve and tests/run: system packages, Rust, caches, PostgreSQL.
# Sourced, not run. Everything here is idempotent and fast when already done.

SB_CACHE="${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SB_CACHE/target}"
mkdir -p "$SB_CACHE"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The Debian/Ubuntu packages the build, the models and the tests need.
SB_PACKAGES=(
  build-essential pkg-config cmake clang libclang-dev git curl ca-certificates
  python3 python3-pip unzip xz-utils
  espeak-ng               # text to phonemes for Piper, run as a separate process (GPL, not linked)
  postgresql              # the scale-out database; the tests run against a real server
  openssl                 # makes the test server's TLS certificates
  sip-tester baresip      # real SIP/RTP peers for the end-to-end tests
  strace                  # proves the daemon reaches no address but its peers (tests/egress.rs)
  systemd                 # systemd-analyze rates the service sandbox (tests/e2e/tests/systemd.rs)
)

install_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing system packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# llama.cpp's CPU extensions, for the CPU of this box (an appliance built from source runs where
# it was built). llama-cpp-sys-2 stops at AVX2 unless told; AVX-512 (with VNNI) prefills 60–85%
# and decodes 9–10% faster on the 2-core reference box. Every option is passed ON or OFF, as
# CMake keeps an old value that is not passed again; a changed value rebuilds llama.cpp, so a
# target dir moved to another CPU is rebuilt for it. AMX is never turned on: its tile
# instructions fault (SIGILL) under hypervisors that report AMX without enabling it.
# `-march=native` is no substitute: it decoded 15% slower here than these explicit options.
cpu_features() {
  local flags option feature
  flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
  for option in GGML_AVX512:avx512f GGML_AVX512_VNNI:avx512_vnni GGML_AVX512_VBMI:avx512vbmi \
    GGML_AVX512_BF16:avx512_bf16 GGML_AVX_VNNI:avx_vnni; do
    feature=${option#*:}
    if [[ $flags == *" $feature "* ]]; then export "${option%%:*}=ON"; else export "${option%%:*}=OFF"; fi
  done
  export GGML_AMX_TILE=OFF GGML_AMX_INT8=OFF GGML_AMX_BF16=OFF
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] || {
      say "installing Rust (rustup)"
      curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy -c rustfmt
    }
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  # tests/run checks formatting and lints; a minimal toolchain lacks both tools.
  if ! cargo clippy --version >/dev/null 2>&1 || ! cargo fmt --version >/dev/null 2>&1; then
    say "adding clippy and rustfmt to the Rust toolchain"
    rustup component add clippy rustfmt
  fi
}

# cargo-deny at a pinned version, built once into the cache from crates.io (its releases page is
# not reachable from CI). packaging/dev/deny derives the advisory database's directory from it.
CARGO_DENY_VERSION=0.20.2
ensure_cargo_deny() {
  local root="$SB_CACHE/tools/cargo-deny-$CARGO_DENY_VERSION"
  if [ ! -x "$root/bin/cargo-deny" ]; then
    say "installing cargo-deny $CARGO_DENY_VERSION"
    cargo install --locked --quiet cargo-deny --version "$CARGO_DENY_VERSION" --root "$root" \
      --target-dir "$SB_CACHE/tools/build"
  fi
  export PATH="$root/bin:$PATH"
}

# A build cache kept within bounds. Cargo never deletes what it built for an older version of the
# code, other features or another toolchain, so a long-lived box's target dir grows by gigabytes
# a day until the disk is full, and then the linker dies of SIGBUS halfway through a build. Past
# $2 GB (or with under $3 GB free on its disk) the incremental state goes first, then everything:
# one cold build costs less than a run that fails for want of space. A disk that is still short
# after that is an error stated up front.
bound_build_cache() {
  local dir=$1 max_gb=$2 free_gb_needed=$3 part
  mkdir -p "$dir"
  for part in "$dir"/*/incremental "$dir"/*/*/incremental ALL; do
    [ "$(cache_gb "$dir")" -le "$max_gb" ] && [ "$(free_gb "$dir")" -ge "$free_gb_needed" ] && return 0
    if [ "$part" = ALL ]; then
      say "emptying the build cache $dir ($(cache_gb "$dir") GB; $(free_gb "$dir") GB free on its disk)"
      find "$dir" -mindepth 1 -maxdepth 1 ! -name CACHEDIR.TAG -exec rm -rf {} +
    elif [ -d "$part" ]; then
      say "dropping the build cache's incremental state $part ($(cache_gb "$dir") GB in all)"
      rm -rf "$part"
    fi
  done
  [ "$(free_gb "$dir")" -ge "$free_gb_needed" ] || {
    echo "only $(free_gb "$dir") GB free on the disk of $dir; the build needs $free_gb_needed GB" >&2
    return 1
  }
}
cache_gb() { du -sk "$1" 2>/dev/null | awk '{print int($1 / 1048576)}'; }
free_gb() { df -Pk "$1" | awk 'NR == 2 {print int($4 / 1048576)}'; }

# Starts a throw-away PostgreSQL server on 127.0.0.1 for the tests and exports its URL.
# Stopped (and its files removed) when the calling script exits.
# A CA, a server certificate for 127.0.0.1 it signed, and an unrelated CA, in $1.
test_postgres_certificates() {
  local dir=$1
  mkdir -p "$dir"
  (
    cd "$dir" || exit 1
    for ca in ca other-ca; do
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
        -subj "/CN=switchboard test $ca" -keyout "$ca.key" -out "$ca.crt" 2>/dev/null || exit 1
    done
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
      -keyout server.key -out server.csr 2>/dev/null &&
      printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext &&
      openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 \
        -extfile server.ext -out server.crt 2>/dev/null &&
      chmod 600 server.key
  ) || { echo "cannot make the test PostgreSQL's certificates" >&2; return 1; }
}

start_test_postgres() {
  local bin port dir owner
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$bin/initdb" ] || { echo "PostgreSQL server binaries not found" >&2; return 1; }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  dir=$(mktemp -d /tmp/switchboard-pg.XXXXXX)
  # PostgreSQL refuses to run as root: use the postgres system account then.
  owner=()
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; owner=(runuser -u postgres --); fi
  "${owner[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; return 1; }
  # TLS as a site would run it: a private CA, the server's certificate for 127.0.0.1 signed by
  # it, and a second CA that signed nothing (a client trusting only that one must refuse).
  test_postgres_certificates "$dir/tls" || return 1
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$dir/tls"; fi
  "${owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c ssl=on \
        -c ssl_cert_file=$dir/tls/server.crt -c ssl_key_file=$dir/tls/server.key" \
    start >/dev/null ||
    { cat "$dir/server.log" >&2; return 1; }
  SB_PG_STOP="${owner[*]} $bin/pg_ctl -D $dir/data -m fast stop >/dev/null; rm -rf $dir"
  trap 'eval "$SB_PG_STOP"' EXIT
  export SWITCHBOARD_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  export SWITCHBOARD_TEST_POSTGRES_CA="$dir/tls/ca.crt"
  export SWITCHBOARD_TEST_POSTGRES_OTHER_CA="$dir/tls/other-ca.crt"
  say "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}
