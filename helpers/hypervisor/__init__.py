"""The hypervisor adapter: a running VM's domain, reached on the node that runs it."""
