"""Every time rbdvm waits for something, named in one place, with why it is that long.

Seconds throughout. Constants only, standard library only: the agent's monitor imports this
module. docs/timeouts.md lists the same table for operators (a unit test keeps the two in step).
"""

import os

# ---------------------------------------------------------------- the agent's actions
# what each action of ocf:rbdvm:VirtualDomain may take (its meta-data advertises these and
# the resources rbdvm writes into the CIB set them); a VM's stop and migrate_to timeouts can be
# set per VM (its stop_timeout and migrate_to_timeout settings)
ACTION_TIMEOUTS = {"start": 90, "stop": 90, "monitor": 30, "status": 30, "migrate_to": 120,
                   "migrate_from": 60, "meta-data": 5, "validate-all": 10}
MONITOR_INTERVAL = 10
# the agent's own answer must reach Pacemaker before the operation's timeout
AGENT_ANSWER_MARGIN = 1.0
# kept at the end of stop to SIGKILL a QEMU libvirt could not end, and see it gone
AGENT_KILL_RESERVE = 3.0
# a libvirtd that has not answered a plain query in this time is hung: the agent uses the
# process table instead
AGENT_LIBVIRT = 10.0
# how often, and how long, monitor asks again while libvirt and the process table disagree
MONITOR_RECHECK_EVERY = 0.2
MONITOR_RECHECK_FOR = 2.0
# migrate_from: how long the target waits for the incoming domain to appear running
MIGRATE_FROM_APPEAR = 30
# the split-brain guard's three Pacemaker queries that judge a node fenced, together
FENCE_QUERY = 10
# Ceph-aware failover: how long a fenced node's OSD may take to accept a connection before it
# is taken for dead. A live one on the cluster network answers in a round trip (its kernel
# completes the handshake however busy the daemon is); a lost SYN is resent only after 1 s,
# so waiting longer than a few round trips buys nothing but failover time.
OSD_ALIVE_PROBE = 0.2

# ---------------------------------------------------------------- Ceph
# an unreachable cluster fails a connection within this
CEPH_CONNECT = 10
# how long the disk client of a killed command (its qemu-img import) may still show as open:
# Ceph keeps a dead client's watch until its watch timeout (osd_client_watch_timeout, 30 s)
LINGERING_WATCH = 35
# what one OSD request may wait: a paused or down OSD makes I/O wait for ever without it.
# The CLI's operations take the long one; the fence agent and its self-check answer within
# budgets of their own
OSD_OP = 60
OSD_OP_FENCE_AGENT = 10
OSD_OP_FENCE_CHECK = 5
# one monitor command (blocklist entries)
MON_COMMAND = 10
# how long a killed command's lease blocks the VM; RBDVM_LEASE_SECONDS shortens it (tests)
LEASE = int(os.environ.get("RBDVM_LEASE_SECONDS", "30"))
# a fencer that dies holding the fence lock lets it go after this
FENCE_LOCK = 30
# what a fence action may wait for another fencer's lock: with CEPH_CONNECT and
# OSD_OP_FENCE_AGENT an action answers within ~40 s at worst (set the device's
# pcmk_off_timeout or stonith-timeout above that; Pacemaker's default is 60 s)
FENCE_LOCK_WAIT = 20
# a fence holds until unfencing removes it; Ceph wants an expiry, so a long one
FENCE_EXPIRY = 90 * 24 * 3600
# a blocklist entry rbdvm adds without fencing: long enough for any fenced node to be
# rebooted (its new clients have new nonces)
BLOCKLIST_EXPIRY = 3600
# what recording an event in the history may add to an agent action (a paused Ceph loses the
# event, never the action's budget)
EVENT_WRITE = 2
# the exporter: what one OSD request of a collection may wait, and the whole collection
EXPORTER_OSD_OP = 5
EXPORTER_COLLECT = 10
# what the alert agent may take to record a fence or a lost node: a lost node's OSD may
# hold the history's placement group until it is marked down (the Ceph-aware failover's
# mark, or Ceph's own grace), and librados resends the write then. The alert's own timeout,
# which rbdvm declares, is ALERT_TIMEOUT
ALERT_WRITE = 25
ALERT_TIMEOUT = 30
# seconds between the fence self-check's looks at the blocklist
FENCE_CHECK_INTERVAL = 5

# ---------------------------------------------------------------- Pacemaker and libvirt
# one call of a Pacemaker tool (crm_mon, cibadmin, crm_resource, crm_attribute)
PACEMAKER_CALL = 30
# a CIB query
CIB_QUERY = 15
# one crm_simulate run over a copy of the CIB (rbdvm capacity: one per node)
SIMULATE = 60
# the N+1 check after enable/set/migrate/pin/prefer, all its runs together: at hundreds of
# VMs one crm_simulate run takes seconds (docs/benchmarks.md), and the change is made already
CAPACITY_CHECK = 10
# crm_resource --cleanup (it waits for the re-probe on every node)
CLEANUP = 60
# what the CLI waits for the cluster to act on a command
START_WAIT = 120
STOP_WAIT = 150
MIGRATE_WAIT = 180
# a settings change or a placement change: the cluster settles after it
SETTLE_WAIT = 180
# a node drained or resumed: every VM it runs moves
DRAIN_WAIT = 600
DRAIN_POLL = 1.0               # a drain reads where its VMs are this often, to say how far it got
# adopt asked to stop the libvirt domain it takes over: its graceful shutdown
ADOPT_SHUTDOWN_WAIT = 120
# one libvirt call on another node's libvirtd (hot-plug, live resize)
LIBVIRT_CALL = 30
# the guest agent freezing a guest's filesystems for a snapshot or backup (not frozen by
# then: the snapshot is crash-consistent, and the guest is thawed all the same)
GUEST_FREEZE = 10
# the longest a guest stays frozen or paused for a snapshot or backup whatever happens to
# the command (killed, stopped): a separate watcher thaws and resumes it then
GUEST_FROZEN_MAX = 60

# ---------------------------------------------------------------- names
# one reverse DNS lookup of a disk client's address (glibc's resolver would take
# timeout x attempts, 10 s and more, towards a dead server)
DNS_LOOKUP = 0.5
