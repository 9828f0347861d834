"""Defaults with one owner: where rbdvm finds Ceph, and the time each agent action gets.
The agent's meta-data, the resources rbdvm writes into the CIB and the CLI all read them
here. Constants only (the agent's monitor imports this module)."""

CEPH_CONF = "/etc/ceph/ceph.conf"
CEPH_ID = "rbdvm"
POOL = "rbd"
HYPERVISOR = "qemu:///system"
DISK_BUS = "virtio"

# seconds each action of ocf:rbdvm:VirtualDomain may take; a VM's stop and migrate_to
# timeouts can be set per VM (its stop_timeout and migrate_to_timeout settings)
ACTION_TIMEOUTS = {"start": 90, "stop": 90, "monitor": 30, "status": 30, "migrate_to": 120,
                   "migrate_from": 60, "meta-data": 5, "validate-all": 10}
MONITOR_INTERVAL = 10

# storage fencing (fence_rbdvm): its own Ceph user, as client.rbdvm may add blocklist
# entries but not remove them; the fence lock's pool is the VMs' pool
FENCE_CEPH_ID = "rbdvm-fence"
FENCE_CHECK_INTERVAL = 5    # seconds between the self-check's looks at the blocklist
