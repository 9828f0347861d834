"""The libvirt domain XML the device policy admits: every element, by its parent, with the
attributes it may carry and whether it may hold text. An allow-list: an element, attribute
or text not declared here is refused, whatever libvirt would make of it, so a feature
libvirt adds later (or one the policy never considered) cannot reach QEMU unjudged.

Declared values are not host paths: an attribute's value may hold no '/' and may not be
'.' or '..' (a name that libvirt puts into a sysfs or /dev path stays a name), unless it is
declared `:free` (data handed to the guest, or a time zone). Host paths are never declared
here: the device policy's rules (devpolicy.py) judge each one in its context and admit it
by the element and attribute they judged.

Pure: no I/O.
"""

# parent/tag  attributes...  [#text: a value as above | #free: any text | #path: judged by a rule]
# (`a|b/tag`: the same declaration under either parent; an indented line continues the one above)
_SPEC = """
/domain type id
domain/name #text
domain/uuid #text
domain/genid #text
domain/title #free
domain/description #free
domain/metadata
domain/memory unit dumpCore #text
domain/currentMemory unit #text
domain/maxMemory unit slots #text
domain/vcpu placement cpuset current #text
domain/vcpus
vcpus/vcpu id enabled hotpluggable order
domain/iothreads #text
domain/iothreadids
iothreadids/iothread id
domain/cputune
cputune/vcpupin vcpu cpuset
cputune/emulatorpin cpuset
cputune/iothreadpin iothread cpuset
cputune/vcpusched vcpus scheduler priority
cputune/iothreadsched iothreads scheduler priority
cputune/emulatorsched scheduler priority
cputune/shares|period|quota|global_period|global_quota #text
cputune/emulator_period|emulator_quota|iothread_period|iothread_quota #text
domain/numatune
numatune/memory mode nodeset placement
numatune/memnode cellid mode nodeset
domain/memoryBacking
memoryBacking/hugepages
hugepages/page size unit nodeset
memoryBacking/nosharepages
memoryBacking/locked
memoryBacking/source type
memoryBacking/access mode
memoryBacking/allocation mode threads
memoryBacking/discard
domain/blkiotune
blkiotune/weight #text
domain/memtune
memtune/hard_limit|soft_limit|swap_hard_limit|min_guarantee unit #text
domain/resource
resource/partition #path
domain/sysinfo type
sysinfo/bios|system|baseBoard|chassis|memory|oemStrings
bios|system|baseBoard|chassis|memory|oemStrings|sysinfo/entry name #free
domain/os firmware
os/type arch machine #text
os/loader readonly secure type stateless format #path
os/nvram template type format templateFormat #path
nvram/source protocol name
os/boot dev
os/bootmenu enable timeout
os/bios useserial rebootTimeout
os/smbios mode
os/kernel #path
os/initrd #path
os/dtb #path
os/cmdline #free
os/acpi
acpi/table type #path
os/firmware
firmware/feature enabled name
domain/features
features/acpi|pae|privnet|viridian|htm|nested-hv
features/apic eoi
features/hap|vmport|pmu|pvspinlock|vmcoreinfo|smm|ccf-assist state
features/ioapic driver
features/gic version
features/msrs unknown
features/hyperv mode
hyperv/relaxed|vapic|vpindex|runtime|synic|reset|frequencies|reenlightenment|ipi|evmcs|avic state
hyperv/spinlocks state retries
hyperv/vendor_id state value
hyperv/stimer state
stimer/direct state
hyperv/tlbflush state
tlbflush/direct state
features/kvm
kvm/hidden|hint-dedicated|poll-control|pv-ipi|dirty-ring state
domain/cpu mode match check migratable
cpu/model fallback vendor_id #text
cpu/vendor #text
cpu/topology sockets dies clusters cores threads
cpu/feature policy name
cpu/cache level mode
cpu/maxphysaddr mode bits limit
cpu/numa
numa/cell id cpus memory unit memAccess discard
cell/distances
distances/sibling id value
domain/clock offset adjustment basis timezone:free
clock/timer name present tickpolicy track frequency mode
timer/catchup threshold slew limit
domain/on_poweroff|on_reboot|on_crash|on_lockfailure #text
domain/pm
pm/suspend-to-mem|suspend-to-disk enabled
domain/perf
perf/event name enabled
domain/devices
devices/emulator #path

devices/disk type device snapshot model
disk/driver name type cache io ioeventfd event_idx copy_on_read discard detect_zeroes iothread queues
    queue_size error_policy rerror_policy packed ats iommu
disk/source protocol name index
source/host name port
disk|source/auth username
auth/secret type usage uuid
disk/target dev bus tray removable rotation_rate
disk/boot order loadparm
disk/readonly|shareable|transient
disk/serial|wwn|vendor|product #text
disk/blockio logical_block_size physical_block_size discard_granularity
disk/geometry cyls heads secs trans
disk/iotune
iotune/total_bytes_sec|read_bytes_sec|write_bytes_sec|total_iops_sec #text
iotune/read_iops_sec|write_iops_sec|total_bytes_sec_max|read_bytes_sec_max #text
iotune/write_bytes_sec_max|total_iops_sec_max|read_iops_sec_max|write_iops_sec_max #text
iotune/size_iops_sec|group_name|total_bytes_sec_max_length|read_bytes_sec_max_length #text
iotune/write_bytes_sec_max_length|total_iops_sec_max_length|read_iops_sec_max_length|write_iops_sec_max_length #text
disk/backingStore

devices/controller type index model ports vectors max_grant_frames
controller/model name
controller/target chassisNr chassis port busNr index hotplug memReserve node
controller/driver queues cmd_per_lun max_sectors ioeventfd iothread iommu ats packed
controller/master startport
controller/pcihole64 unit #text

devices/interface type trustGuestRxFilters managed
interface/mac address type check
interface/source bridge network portgroup dev mode type
interface/target dev managed
interface/model type
interface/driver name txmode ioeventfd event_idx queues rx_queue_size tx_queue_size iommu ats packed
driver/host csum gso tso4 tso6 ecn ufo mrg_rxbuf
driver/guest csum tso4 tso6 ecn ufo
interface/virtualport type
virtualport/parameters interfaceid profileid managerid typeid typeidversion instanceid
interface/vlan trunk
vlan/tag id nativeMode
interface/link state
interface/mtu size
interface/coalesce
coalesce/rx
rx/frames max
interface/bandwidth
bandwidth/inbound|outbound average peak burst floor
interface/boot order
interface/rom bar enabled
interface/backend
interface/tune
interface/filterref filter
filterref/parameter name value
tune/sndbuf #text

devices/hostdev mode type managed
hostdev/source
hostdev/driver name
hostdev/rom bar enabled
hostdev/boot order

devices/serial|console|parallel|channel type
serial|console|parallel|channel|backend/source mode append
serial|console|parallel|channel/target type port name state
target/model name
serial|console|parallel|channel/log append
serial|console|parallel|channel|backend/protocol type

devices/redirdev bus type
redirdev/boot order

devices/rng model
rng/backend model type #path
rng/rate bytes period
rng|memballoon|video|input|vsock|panic|watchdog/driver iommu ats packed name

devices/tpm model
tpm/backend type version persistent_state
backend/active_pcr_banks
active_pcr_banks/sha1|sha256|sha384|sha512

devices/input type bus model
input/source

devices/graphics type port autoport listen keymap sharePolicy websocket passwd:free passwdValidTo:free
    connected defaultMode tlsPort
graphics/listen type address network
graphics/channel name mode
graphics/image|jpeg|zlib|playback compression
graphics/streaming mode
graphics/clipboard copypaste
graphics/mouse mode
graphics/filetransfer enable

devices/video
video/model type vram heads primary ram vram64 vgamem blob
model/acceleration accel3d accel2d
model/resolution x y

devices/sound model
sound/codec type
sound/audio id
devices/audio id type

devices/watchdog model action
devices/memballoon model autodeflate freePageReporting
memballoon/stats period
devices/panic model
devices/vsock model
vsock/cid auto address
devices/iommu model
iommu/driver intremap caching_mode eim iotlb aw_bits
devices/hub type

devices/memory model access discard
memory/target
memory/source
target/size|block|requested|current unit #text
target/node #text
target/label
label/size unit #text
source/pagesize unit #text
source/nodemask #text

disk|controller|interface|hostdev|serial|console/address type domain bus slot function
    multifunction controller target unit
    port cssid ssid devno reg base
    iobase irq
parallel|channel|redirdev|rng|tpm|input|video|sound/address type domain bus slot function
    multifunction controller target unit
    port cssid ssid devno reg base
    iobase irq
watchdog|memballoon|panic|vsock|hub|memory|iommu/address type domain bus slot function
    multifunction controller target unit
    port cssid ssid devno reg base
    iobase irq
source/address type domain bus slot function
    multifunction controller target unit
    port cssid ssid devno reg base
    iobase irq
disk|controller|interface|hostdev|serial|console/alias name
parallel|channel|redirdev|rng|tpm|input|video|sound/alias name
watchdog|memballoon|panic|vsock|hub|memory|audio/alias name
"""


class Declared:
    __slots__ = ("attrs", "free", "text")

    def __init__(self, attrs: frozenset, free: frozenset, text: str | None):
        self.attrs, self.free, self.text = attrs, free, text   # text: None, "text", "free" or "path"


def _read(spec: str) -> dict:
    table: dict = {}
    for line in spec.replace("\n    ", " ").splitlines():
        words = line.split()
        if not words:
            continue
        where, rest = words[0], words[1:]
        text = next((w[1:] for w in rest if w.startswith("#")), None)
        attrs = [w for w in rest if not w.startswith("#")]
        plain = frozenset(a for a in attrs if not a.endswith(":free"))
        free = frozenset(a.removesuffix(":free") for a in attrs if a.endswith(":free"))
        parents, _, tags = where.rpartition("/")
        for parent in parents.split("|"):
            for tag in tags.split("|"):
                key = (parent, tag)
                if key in table:
                    raise ValueError(f"{parent}/{tag} declared twice")
                table[key] = Declared(plain | free, free, text)
    return table


ADMITTED = _read(_SPEC)
ROOT = ("", "domain")

# the elements libvirt reads once (its parser takes the first, or merges them): a second is
# refused, so the policy never judges one while libvirt uses another
SINGLE = {
    "domain": {"name", "uuid", "genid", "title", "description", "metadata", "memory", "currentMemory",
               "maxMemory", "vcpu", "vcpus", "iothreads", "iothreadids", "cputune", "numatune",
               "memoryBacking", "blkiotune", "memtune", "resource", "os", "features", "cpu", "clock",
               "on_poweroff", "on_reboot", "on_crash", "on_lockfailure", "pm", "perf", "devices"},
    "os": {"type", "loader", "nvram", "bootmenu", "bios", "smbios", "kernel", "initrd", "dtb", "cmdline",
           "acpi", "firmware"},
    "devices": {"emulator"},
    "disk": {"driver", "source", "target", "auth", "backingStore", "boot", "address", "alias", "iotune"},
    "interface": {"mac", "source", "target", "model", "driver", "backend", "virtualport", "address", "alias",
                  "boot", "rom", "link", "mtu", "vlan", "bandwidth"},
    "serial": {"source", "target", "log", "protocol", "address", "alias"},
    "console": {"source", "target", "log", "protocol", "address", "alias"},
    "channel": {"source", "target", "log", "protocol", "address", "alias"},
    "parallel": {"source", "target", "log", "protocol", "address", "alias"},
    "hostdev": {"source", "driver", "rom", "boot", "address", "alias"},
    "rng": {"backend", "rate", "address", "alias"},
    "tpm": {"backend", "alias"},
    "nvram": {"source"},
}


def declared(parent: str, tag: str) -> Declared | None:
    return ADMITTED.get((parent, tag))


def plain_value(value: str) -> bool:
    """A declared value: not a path, and not a name that becomes one."""
    return "/" not in value and value not in (".", "..") and "\0" not in value
