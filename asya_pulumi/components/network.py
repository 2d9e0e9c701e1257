"""``Network``: a VPC for EKS — public and private subnets in each AZ, one NAT gateway, subnet role tags.

One NAT gateway (not one per AZ) keeps the idle cost down; for AZ-independent egress in production, bring your own
VPC (``ClusterSpec.subnetIds``).
"""

from __future__ import annotations

import ipaddress

import pulumi
import pulumi_aws as aws

from asya_pulumi.components.common import TYPE_PREFIX, AsyaComponent, ComponentOutput, child
from asya_pulumi.spec.cluster import SUBNET_PREFIX

#: Karpenter's EC2NodeClass finds the node subnets by this tag (``gpuProvisioning: karpenter``; harmless otherwise).
DISCOVERY_TAG = "karpenter.sh/discovery"

class Network(AsyaComponent):
    OUTPUTS = (
        ComponentOutput("vpcId", "vpc_id", str, "The VPC's id."),
        ComponentOutput("privateSubnetIds", "private_subnet_ids", list[str], "One private subnet per AZ (the nodes')."),
        ComponentOutput("publicSubnetIds", "public_subnet_ids", list[str], "One public subnet per AZ (NAT, load "
                        "balancers)."),
    )
    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]

    def __init__(
        self,
        resource_name: str,
        *,
        cluster_name: str,
        cidr: str,
        availability_zones: list[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}Network", resource_name, None, opts)
        blocks = list(ipaddress.ip_network(cidr).subnets(new_prefix=SUBNET_PREFIX))
        if len(blocks) < 2 * len(availability_zones):
            raise ValueError(f"vpcCidr {cidr} is too small for {len(availability_zones)} AZs; use a /16")
        cluster_tag = {f"kubernetes.io/cluster/{cluster_name}": "shared"}
        vpc = aws.ec2.Vpc(
            resource_name, cidr_block=cidr, enable_dns_hostnames=True, enable_dns_support=True,
            tags={"Name": cluster_name}, opts=child(self),
        )
        gateway = aws.ec2.InternetGateway(f"{resource_name}-igw", vpc_id=vpc.id, opts=child(self))
        public_routes = aws.ec2.RouteTable(
            f"{resource_name}-public", vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}], opts=child(self),
        )
        self.public_subnet_ids, self.private_subnet_ids = [], []
        public_subnets = []
        for index, zone in enumerate(availability_zones):
            public = aws.ec2.Subnet(
                f"{resource_name}-public-{zone}", vpc_id=vpc.id, availability_zone=zone,
                cidr_block=str(blocks[len(availability_zones) + index]), map_public_ip_on_launch=True,
                tags={**cluster_tag, "kubernetes.io/role/elb": "1", "Name": f"{cluster_name}-public-{zone}"},
                opts=child(self),
            )
            aws.ec2.RouteTableAssociation(
                f"{resource_name}-public-{zone}", subnet_id=public.id, route_table_id=public_routes.id, opts=child(self)
            )
            public_subnets.append(public)
            self.public_subnet_ids.append(public.id)
        nat_ip = aws.ec2.Eip(f"{resource_name}-nat", domain="vpc", opts=child(self))
        nat = aws.ec2.NatGateway(
            f"{resource_name}-nat", allocation_id=nat_ip.id, subnet_id=public_subnets[0].id,
            opts=child(self, depends_on=[gateway]),
        )
        private_routes = aws.ec2.RouteTable(
            f"{resource_name}-private", vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}], opts=child(self),
        )
        for index, zone in enumerate(availability_zones):
            private = aws.ec2.Subnet(
                f"{resource_name}-private-{zone}", vpc_id=vpc.id, availability_zone=zone,
                cidr_block=str(blocks[index]),
                tags={**cluster_tag, "kubernetes.io/role/internal-elb": "1", "Name": f"{cluster_name}-private-{zone}",
                      DISCOVERY_TAG: cluster_name},
                opts=child(self),
            )
            aws.ec2.RouteTableAssociation(
                f"{resource_name}-private-{zone}", subnet_id=private.id, route_table_id=private_routes.id,
                opts=child(self),
            )
            self.private_subnet_ids.append(private.id)
        self.vpc_id = vpc.id
        self.register()
