#!/bin/sh
# device-api.sh: ublk::Device's failure and stop paths on a real device,
# driven by device_api_check (test/vm/device_api_check.cc): none may hang,
# and every device is deleted afterwards.
. "${COBLK_VM_LIB:-$(dirname "$0")/../lib.sh}"

api_id=170

api_check() {
  vm_require_root
  vm_require_cmd device_api_check timeout
  vm_load_module ublk_drv
  vm_wait_for_path /dev/ublk-control 5
  timeout 30 device_api_check "$1" "$api_id" || vm_fail "device_api_check $1 failed or hung (status $?)"
  [ ! -e "/dev/ublkc$api_id" ] || vm_fail "/dev/ublkc$api_id is left behind"
}

vm_case "a queue whose target cannot start ends serve() with its error instead of hanging the other queue" \
  api_check queue-start-fails
vm_case "a stop requested before the device started ends serve() cleanly and leaves nothing behind" \
  api_check stop-before-start
vm_case "a target that answers a write with 0 or a read with too few or too many bytes fails those requests with EIO instead of hanging them" \
  api_check bad-results
vm_finish
