"""The rbdvm lab: real Ceph + two libvirt/Pacemaker nodes on one machine, in network namespaces.

Standard library only: it runs under Debian's /usr/bin/python3 before any venv exists, and
its fence agent runs inside pacemaker-fenced.
"""
