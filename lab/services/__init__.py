"""Running the services on this machine: each service in a thread or as a process, scenes
posted and answers polled (``live``), the ground segment's stations and workers on
PostgreSQL and NATS (``segment``), and the live demo built on them (``demo``:
``targetfuse demo``)."""
