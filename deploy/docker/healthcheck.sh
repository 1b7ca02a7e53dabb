#!/bin/bash
# healthcheck [--path PATH] [PORT...]: GET PATH (default /health) on 127.0.0.1
# at each PORT (default 8000, then 8080 for `serve-exec --sidecar`); exits 0 if
# one answers 200. Sends RLMBOX_TOKEN as a bearer token when it is set, since
# every route but /health needs it then. Needs only bash (no curl in the image).
# Used by the image's HEALTHCHECK and by Kubernetes exec probes where an HTTP
# probe cannot work (a sidecar bound to 127.0.0.1; /ready behind the token).
path=/health
if [[ "${1:-}" == "--path" ]]; then path="$2"; shift 2; fi
ports=("$@")
[[ ${#ports[@]} -gt 0 ]] || ports=(8000 8080)

probe() {  # probe PORT
  local status_line="" auth=""
  [[ -n "${RLMBOX_TOKEN:-}" ]] && auth="Authorization: Bearer ${RLMBOX_TOKEN}"$'\r\n'
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n%s\r\n' "$path" "$auth" >&3
  read -r -t 2 status_line <&3
  exec 3<&-
  [[ "$status_line" == *" 200 "* ]]
}

for port in "${ports[@]}"; do
  probe "$port" 2>/dev/null && exit 0
done
exit 1
