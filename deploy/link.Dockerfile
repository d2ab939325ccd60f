# The link shaper: tc (iproute2) and deploy/shape.sh. Runs in the onboard service's network
# namespace (compose: network_mode "service:onboard") with the NET_ADMIN capability.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends iproute2 \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY deploy/shape.sh /usr/local/bin/shape.sh
ENTRYPOINT ["/usr/local/bin/shape.sh", "hold"]
