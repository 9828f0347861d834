"""Defaults with one owner: where rbdvm finds Ceph (the times it waits: core/timeouts.py).
The agent's meta-data, the resources rbdvm writes into the CIB and the CLI all read them
here. Constants only (the agent's monitor imports this module)."""

CEPH_CONF = "/etc/ceph/ceph.conf"
CEPH_ID = "rbdvm"
POOL = "rbd"
HYPERVISOR = "qemu:///system"
DISK_BUS = "virtio"

# storage fencing (fence_rbdvm): its own Ceph user, as client.rbdvm may add blocklist
# entries but not remove them; the fence lock's pool is the VMs' pool
FENCE_CEPH_ID = "rbdvm-fence"
# rolling maintenance (node drain --maintenance): the Ceph user that may set and clear
# noout on a host's OSDs, and read the cluster's health (docs/day-two.md gives its caps)
MAINTENANCE_CEPH_ID = "rbdvm-maintenance"
# the Pacemaker alert agent's user (it runs as hacluster): adds to the event history, reads
# the nodes' alive stamps, nothing else; its keyring is readable by the haclient group
HISTORY_CEPH_ID = "rbdvm-history"
# where `rbdvm exporter` serves its metrics: this node only (a Prometheus elsewhere needs a
# --listen of the site's choosing)
EXPORTER_LISTEN = "127.0.0.1:9775"
# where install-agent and the package put the alert agent, and the CIB's alert names it
ALERT_AGENT = "/usr/libexec/rbdvm/alert_rbdvm"
