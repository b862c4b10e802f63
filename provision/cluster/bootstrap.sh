# >>> mlrig cluster bootstrap: @@NAME@@, @@SIZE@@ node(s), engine @@ENGINE@@
mlrig_cluster_bootstrap() (
  set -u
  dir=${MLRIG_CLUSTER_DIR:-@@DIR@@}
  name=@@NAME@@ size=@@SIZE@@ master_port=@@MASTER_PORT@@ engine=@@ENGINE@@ ray_port=@@RAY_PORT@@
  launch=@@LAUNCH@@ launch_json=@@LAUNCH_JSON@@ metadata=@@METADATA@@
  wait_s=@@WAIT@@ ray_wait=@@RAY_WAIT@@ ray_args=@@RAY_ARGS@@ run_as=@@RUN_AS@@
  inline=@@INLINE@@

  log() { printf 'mlrig cluster: %s\n' "$*" >&2; }
  put() {  # stdin -> $dir/$1, atomically
    local tmp
    tmp=$(mktemp "$dir/.$1.XXXXXX") || return 1
    if cat >"$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" "$dir/$1"; then return 0; fi
    rm -f "$tmp"; return 1
  }
  fail() {
    log "$*"
    printf '%s\n' "$*" | put cluster.error
    exit 1
  }
  gce_md() {
    command -v curl >/dev/null 2>&1 || return 1
    curl -fsS --connect-timeout 2 --max-time 3 -H 'Metadata-Flavor: Google' \
      "http://${GCE_METADATA_HOST:-${GCE_METADATA_IP:-metadata.google.internal}}/computeMetadata/v1/$1" 2>/dev/null
  }
  aws_md() {
    command -v curl >/dev/null 2>&1 || return 1
    local base=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254} token
    base=${base%/}
    token=$(curl -fsS --connect-timeout 2 --max-time 3 -X PUT \
      -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$base/latest/api/token" 2>/dev/null) || return 1
    curl -fsS --connect-timeout 2 --max-time 3 -H "X-aws-ec2-metadata-token: $token" \
      "$base/latest/meta-data/$1" 2>/dev/null
  }
  aws_nodes() {  # the node list from this instance's own tags (instance tags in its metadata)
    local n k=0 part i role all=() more
    n=$(aws_md tags/instance/mlrig-nodes-n) || return 1
    [[ $n =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ] || return 1
    while [ "${#all[@]}" -lt "$n" ]; do
      part=$(aws_md "tags/instance/mlrig-nodes-$k") || return 1
      read -r -a more <<<"$part"
      [ "${#more[@]}" -gt 0 ] || return 1
      all+=("${more[@]}")
      k=$((k + 1))
    done
    [ "${#all[@]}" -eq "$n" ] || return 1
    for i in "${!all[@]}"; do
      role=worker; [ "$i" -eq 0 ] && role=head
      printf '%s %s %s -\n' "$i" "$role" "${all[$i]}"
    done
  }
  tpu_nodes() {  # worker-network-endpoints (name:id:ip,... or host,...) -> node list
    local k=0 e a h role
    while IFS= read -r e; do
      [ -n "$e" ] || continue
      case $e in
        *:*:*) a=${e##*:} h=- ;;
        *) h=$e a=$(getent ahostsv4 "$e" 2>/dev/null | awk 'NR == 1 {print $1}') ;;
      esac
      role=worker; [ "$k" -eq 0 ] && role=head
      printf '%s %s %s %s\n' "$k" "$role" "${a:--}" "$h"
      k=$((k + 1))
    done < <(printf '%s\n' "$1" | tr ',' '\n')
  }
  read_nodes() {  # the node list, from wherever it is; fails while there is none yet
    local v
    if [ -n "$inline" ]; then printf '%s\n' "$inline"; return 0; fi
    if [ -s "$dir/nodes" ]; then cat "$dir/nodes"; return 0; fi
    case $metadata in
      gce) v=$(gce_md instance/attributes/mlrig-nodes) && [ -n "$v" ] && { printf '%s\n' "$v"; return 0; } ;;
      tpu) v=$(gce_md instance/attributes/worker-network-endpoints) && [ -n "$v" ] && { tpu_nodes "$v"; return 0; } ;;
      aws) v=$(aws_nodes) && [ -n "$v" ] && { printf '%s\n' "$v"; return 0; } ;;
    esac
    return 1
  }
  by_addr() {
    local i
    for i in "${!addrs[@]}"; do
      if [ "${addrs[$i]}" = "$1" ]; then rank=$i; return 0; fi
    done
    return 1
  }
  by_host() {
    local i h s=${1%%.*}
    s=${s,,}
    [ -n "$s" ] || return 1
    for i in "${!hosts[@]}"; do
      h=${hosts[$i]%%.*}
      if [ "$h" != - ] && [ "${h,,}" = "$s" ]; then rank=$i; return 0; fi
    done
    return 1
  }
  local_addrs() {
    { hostname -I 2>/dev/null; ip -o -4 addr show 2>/dev/null | awk '{print $4}' | cut -d/ -f1; } |
      tr -s ' \n' '\n\n' | sort -u | tr '\n' ' '
  }
  find_rank() {
    local v i mine found=()
    if [ -n "${MLRIG_NODE_RANK:-}" ]; then
      if [[ $MLRIG_NODE_RANK =~ ^[0-9]+$ ]] && [ "$MLRIG_NODE_RANK" -lt "$n" ]; then
        rank=$MLRIG_NODE_RANK how="MLRIG_NODE_RANK"; return 0
      fi
      fail "MLRIG_NODE_RANK=$MLRIG_NODE_RANK is not a node index 0-$((n - 1))"
    fi
    case $metadata in
      tpu)
        v=$(gce_md instance/attributes/agent-worker-number) || v=
        if [[ $v =~ ^[0-9]+$ ]] && [ "$v" -lt "$n" ]; then rank=$v how="TPU worker number $v"; return 0; fi ;;
      gce)
        v=$(gce_md instance/network-interfaces/0/ip) && by_addr "$v" && { how="GCE metadata address $v"; return 0; }
        v=$(gce_md instance/hostname) && by_host "$v" && { how="GCE metadata hostname $v"; return 0; } ;;
      aws)
        v=$(aws_md local-ipv4) && by_addr "$v" && { how="EC2 metadata address $v"; return 0; }
        v=$(aws_md local-hostname) && by_host "$v" && { how="EC2 metadata hostname $v"; return 0; } ;;
    esac
    for v in "$(hostname 2>/dev/null)" "$(hostname -f 2>/dev/null)"; do
      if [ -n "$v" ] && by_host "$v"; then how="hostname $v"; return 0; fi
    done
    mine=$(local_addrs)
    for i in "${!addrs[@]}"; do
      case " $mine " in *" ${addrs[$i]} "*) found+=("$i") ;; esac
    done
    if [ "${#found[@]}" -eq 1 ]; then rank=${found[0]} how="address ${addrs[${found[0]}]}"; return 0; fi
    if [ "${#found[@]}" -gt 1 ]; then
      fail "this machine has the addresses of nodes ${found[*]}; set MLRIG_NODE_RANK to say which it is"
    fi
    fail "this machine (hostname $(hostname 2>/dev/null), addresses ${mine:-none}) is not in the node list"
  }
  status() { printf '%s\n' "$*" | put engine.status; }
  as_user() {  # run "$@" as the login user when there is one (Ray's files then belong to the user)
    if [ -n "$run_as" ] && [ "$(id -u)" -eq 0 ] && id "$run_as" >/dev/null 2>&1; then
      runuser -l "$run_as" -c "$*"
    else
      "$@"
    fi
  }
  ray_up() {
    local ray=${MLRIG_RAY:-ray} rc try=0 deadline=$((SECONDS + ray_wait))
    if ! command -v "$ray" >/dev/null 2>&1 && ! as_user command -v "$ray" >/dev/null 2>&1; then
      status "failed: $ray is not installed (install ray in the image or the setup script)"; return 1
    fi
    if [ "$rank" -eq 0 ]; then
      log "starting the Ray head on $my_addr:$ray_port"
      # shellcheck disable=SC2086
      as_user "$ray" start --head --node-ip-address="$my_addr" --port="$ray_port" \
        --include-dashboard=false --disable-usage-stats $ray_args
      rc=$?
      if [ "$rc" -eq 0 ]; then status up; return 0; fi
      status "failed: ray start --head exited with $rc"; return 1
    fi
    while :; do
      try=$((try + 1))
      log "joining the Ray head at $master_addr:$ray_port (try $try)"
      # shellcheck disable=SC2086
      as_user "$ray" start --address="$master_addr:$ray_port" --node-ip-address="$my_addr" \
        --disable-usage-stats $ray_args
      rc=$?
      if [ "$rc" -eq 0 ]; then status up; return 0; fi
      if [ "$SECONDS" -ge "$deadline" ]; then
        status "failed: could not join the Ray head at $master_addr:$ray_port ($try tries, last exit $rc)"
        return 1
      fi
      sleep 3
    done
  }

  mkdir -p "$dir" || { log "cannot create $dir"; exit 1; }
  # temp files of a run killed between writing and renaming (put's mktemp names)
  rm -f "$dir"/.cluster.env.?????? "$dir"/.cluster.json.?????? "$dir"/.cluster.error.?????? \
    "$dir"/.nodes.?????? "$dir"/.engine.status.??????
  deadline=$((SECONDS + wait_s)) said=
  until text=$(read_nodes); do
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail "no node list after ${wait_s}s (expected in $dir/nodes or the instance metadata)"
    fi
    [ -n "$said" ] || { log "waiting for the node list"; said=1; }
    sleep 2
  done
  addrs=() hosts=() n=0
  while read -r idx role addr host extra; do
    [ -n "${idx:-}" ] || continue
    case $idx in '#'*) continue ;; esac
    want=worker; [ "$n" -eq 0 ] && want=head
    [ "$idx" = "$n" ] || fail "node list: line $((n + 1)) has index '$idx', expected $n"
    [ "$role" = "$want" ] || fail "node list: node $n is '$role', expected $want"
    [[ $addr =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || fail "node list: node $n address '$addr' is not IPv4"
    [[ ${host:-} =~ ^[A-Za-z0-9.-]{1,253}$ ]] || fail "node list: node $n hostname '${host:-}' is not valid"
    [ -z "${extra:-}" ] || fail "node list: node $n has more than 4 fields"
    addrs+=("$addr") hosts+=("$host") n=$((n + 1))
  done <<<"$text"
  [ "$n" -eq "$size" ] || fail "the node list has $n node(s), this cluster has $size"

  find_rank
  my_addr=${addrs[$rank]} master_addr=${addrs[0]} role=worker
  [ "$rank" -eq 0 ] && role=head
  log "this is node $rank ($role, found by $how)"
  has_hosts=
  for h in "${hosts[@]}"; do [ "$h" = - ] || has_hosts=1; done
  ray_address=null
  [ "$engine" = ray ] && ray_address="\"$master_addr:$ray_port\""

  {
    echo '# mlrig cluster file, written at first boot: KEY=VALUE for `. FILE` and systemd EnvironmentFile='
    echo "MLRIG_CLUSTER=$name"
    [ -z "$launch" ] || echo "MLRIG_LAUNCH_ID=$launch"
    echo "MLRIG_ENGINE=$engine"
    echo "MASTER_ADDR=$master_addr"
    echo "MASTER_PORT=$master_port"
    echo "NNODES=$n"
    echo "NODE_RANK=$rank"
    echo "MLRIG_NODE_ROLE=$role"
    echo "MLRIG_NODE_ADDR=$my_addr"
    echo "MLRIG_NODE_ADDRS=\"${addrs[*]}\""
    [ -z "$has_hosts" ] || echo "MLRIG_NODE_HOSTNAMES=\"${hosts[*]}\""
    [ "$engine" != ray ] || echo "RAY_ADDRESS=$master_addr:$ray_port"
  } | put cluster.env || fail "cannot write $dir/cluster.env"
  {
    printf '{\n  "schema_version": @@SCHEMA@@,\n  "cluster": "%s",\n  "launch_id": %s,\n' "$name" "$launch_json"
    printf '  "engine": "%s",\n  "master_addr": "%s",\n  "master_port": %s,\n' "$engine" "$master_addr" "$master_port"
    printf '  "nnodes": %s,\n  "node_rank": %s,\n  "role": "%s",\n' "$n" "$rank" "$role"
    printf '  "address": "%s",\n  "ray_address": %s,\n  "nodes": [\n' "$my_addr" "$ray_address"
    for i in "${!addrs[@]}"; do
      r=worker; [ "$i" -eq 0 ] && r=head
      h=null; [ "${hosts[$i]}" = - ] || h="\"${hosts[$i]}\""
      c=,; [ "$i" -eq $((n - 1)) ] && c=
      printf '    {"index": %s, "role": "%s", "address": "%s", "hostname": %s}%s\n' "$i" "$r" "${addrs[$i]}" "$h" "$c"
    done
    printf '  ]\n}\n'
  } | put cluster.json || fail "cannot write $dir/cluster.json"
  printf '%s\n' "$text" | put nodes
  rm -f "$dir/cluster.error"
  log "wrote $dir/cluster.env and $dir/cluster.json"

  if [ "$engine" = ray ]; then
    status starting
    ray_up </dev/null >>"$dir/engine.log" 2>&1 &
  fi
  exit 0
)
mlrig_cluster_bootstrap
mlrig_cluster_rc=$?
[ "$mlrig_cluster_rc" -eq 0 ] || echo "mlrig cluster: bootstrap failed (see ${MLRIG_CLUSTER_DIR:-@@DIR@@}/cluster.error)"
# <<< mlrig cluster bootstrap
