"""The messaging network on EC2: VPC, subnets, routes, gateway, security groups, endpoints.

None of these has a physical name AWS looks it up by (security groups excepted): each is
found again by the id the previous deployment record kept, and created when that id is
gone. moto keeps the network as data and moves no packet: the isolation the declared
network gives (no route to the internet from the private subnets, security groups) is a
gap, covered by the policy pack over the declared inputs and by verify over the live
descriptions (``infra/emulator/gaps.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infra.emulator import gaps
from infra.emulator.provision import (
    Context,
    Declared,
    Provisioned,
    Provisioner,
    as_int,
    existing,
    ignore_missing,
    provisioner,
    tag_list,
)
from infra.emulator.record import ResourceRecord

_MISSING = (
    "InvalidVpcID.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidRouteTableID.NotFound",
    "InvalidInternetGatewayID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidVpcEndpointId.NotFound",
    "InvalidAssociationID.NotFound",
    "InvalidRoute.NotFound",
)


def _still_there(declared: Declared, describe: Callable[[str], Any]) -> str | None:
    """The previous record's id, if the resource still exists."""
    previous = declared.previous
    if previous is None or not previous.id:
        return None
    found = existing(lambda: describe(previous.id), *_MISSING)
    return None if found is None else previous.id


def _tag(ctx: Context, resource_id: str, tags: dict[str, str] | None) -> None:
    if tags:
        ctx.client("ec2").create_tags(Resources=[resource_id], Tags=tag_list(tags))


def _arn(ctx: Context, kind: str, resource_id: str) -> str:
    return ctx.arn("ec2", f"{kind}/{resource_id}")


@provisioner
class Vpc(Provisioner):
    type_token = "aws:ec2/vpc:Vpc"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        ec2 = ctx.client("ec2")
        i = declared.inputs
        vpc_id = _still_there(declared, lambda v: ec2.describe_vpcs(VpcIds=[v]))
        if vpc_id is None:
            vpc_id = ec2.create_vpc(CidrBlock=i["cidrBlock"])["Vpc"]["VpcId"]
        for attribute, key in (
            ("EnableDnsSupport", "enableDnsSupport"),
            ("EnableDnsHostnames", "enableDnsHostnames"),
        ):
            if key in i:
                ec2.modify_vpc_attribute(VpcId=vpc_id, **{attribute: {"Value": bool(i[key])}})
        _tag(ctx, vpc_id, i.get("tags"))
        tables = ec2.describe_route_tables(
            Filters=[
                {"Name": "vpc-id", "Values": [vpc_id]},
                {"Name": "association.main", "Values": ["true"]},
            ]
        )["RouteTables"]
        groups = ec2.describe_security_groups(
            Filters=[
                {"Name": "vpc-id", "Values": [vpc_id]},
                {"Name": "group-name", "Values": ["default"]},
            ]
        )["SecurityGroups"]
        ctx.add_gap(gaps.network_isolation(declared.name))
        return Provisioned(
            id=vpc_id,
            state={
                "id": vpc_id,
                "arn": _arn(ctx, "vpc", vpc_id),
                "cidrBlock": i["cidrBlock"],
                "mainRouteTableId": tables[0]["RouteTableId"] if tables else "",
                "defaultSecurityGroupId": groups[0]["GroupId"] if groups else "",
            },
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        ec2 = ctx.client("ec2")
        ignore_missing(lambda: ec2.delete_vpc(VpcId=record.id), *_MISSING)


@provisioner
class Subnet(Provisioner):
    type_token = "aws:ec2/subnet:Subnet"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        ec2 = ctx.client("ec2")
        i = declared.inputs
        subnet_id = _still_there(declared, lambda s: ec2.describe_subnets(SubnetIds=[s]))
        if subnet_id is None:
            subnet_id = ec2.create_subnet(
                VpcId=i["vpcId"], CidrBlock=i["cidrBlock"], AvailabilityZone=i["availabilityZone"]
            )["Subnet"]["SubnetId"]
        ec2.modify_subnet_attribute(
            SubnetId=subnet_id,
            MapPublicIpOnLaunch={"Value": bool(i.get("mapPublicIpOnLaunch", False))},
        )
        _tag(ctx, subnet_id, i.get("tags"))
        return Provisioned(
            id=subnet_id,
            state={
                "id": subnet_id,
                "arn": _arn(ctx, "subnet", subnet_id),
                "availabilityZone": i["availabilityZone"],
            },
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        ec2 = ctx.client("ec2")
        ignore_missing(lambda: ec2.delete_subnet(SubnetId=record.id), *_MISSING)


@provisioner
class RouteTable(Provisioner):
    type_token = "aws:ec2/routeTable:RouteTable"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        ec2 = ctx.client("ec2")
        i = declared.inputs
        table_id = _still_there(declared, lambda t: ec2.describe_route_tables(RouteTableIds=[t]))
        if table_id is None:
            table_id = ec2.create_route_table(VpcId=i["vpcId"])["RouteTable"]["RouteTableId"]
        _tag(ctx, table_id, i.get("tags"))
        return Provisioned(
            id=table_id, state={"id": table_id, "arn": _arn(ctx, "route-table", table_id)}
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        ec2 = ctx.client("ec2")
        ignore_missing(lambda: ec2.delete_route_table(RouteTableId=record.id), *_MISSING)


@provisioner
class Route(Provisioner):
    type_token = "aws:ec2/route:Route"

    def attached_to(self, record: ResourceRecord) -> str | None:
        return str(record.inputs.get("routeTableId") or "") or None

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        ec2 = ctx.client("ec2")
        i = declared.inputs
        table, cidr = str(i["routeTableId"]), str(i["destinationCidrBlock"])
        ignore_missing(
            lambda: ec2.delete_route(RouteTableId=table, DestinationCidrBlock=cidr), *_MISSING
        )
        ec2.create_route(RouteTableId=table, DestinationCidrBlock=cidr, GatewayId=i["gatewayId"])
        return Provisioned(id=f"r-{table}-{cidr}", locator={"table": table, "cidr": cidr})

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        ec2 = ctx.client("ec2")
        ignore_missing(
            lambda: ec2.delete_route(
                RouteTableId=record.locator["table"],
                DestinationCidrBlock=record.locator["cidr"],
            ),
            *_MISSING,
        )


@provisioner
class RouteTableAssociation(Provisioner):
    type_token = "aws:ec2/routeTableAssociation:RouteTableAssociation"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        ec2 = ctx.client("ec2")
        i = declared.inputs
        table, subnet = str(i["routeTableId"]), str(i["subnetId"])
        for found in ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"]:
            for association in found.get("Associations", []):
                if association.get("SubnetId") == subnet:
                    return Provisioned(id=association["RouteTableAssociationId"])
        answer = ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
        return Provisioned(id=answer["AssociationId"])

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        ec2 = ctx.client("ec2")
        ignore_missing(lambda: ec2.disassociate_route_table(AssociationId=record.id), *_MISSING)


@provisioner
class InternetGateway(Provisioner):
    type_token = "aws:ec2/internetGateway:InternetGateway"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        ec2 = ctx.client("ec2")
        i = declared.inputs
        gateway_id = _still_there(
            declared, lambda g: ec2.describe_internet_gateways(InternetGatewayIds=[g])
        )
        if gateway_id is None:
            gateway_id = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        attached = ec2.describe_internet_gateways(InternetGatewayIds=[gateway_id])[
            "InternetGateways"
        ][0].get("Attachments", [])
        if i.get("vpcId") and not any(a.get("VpcId") == i["vpcId"] for a in attached):
            ec2.attach_internet_gateway(InternetGatewayId=gateway_id, VpcId=i["vpcId"])
        return Provisioned(
            id=gateway_id,
            state={"id": gateway_id, "arn": _arn(ctx, "internet-gateway", gateway_id)},
            locator={"vpc": str(i.get("vpcId") or "")},
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        ec2 = ctx.client("ec2")
        vpc = record.locator.get("vpc")
        if vpc:
            ignore_missing(
                lambda: ec2.detach_internet_gateway(InternetGatewayId=record.id, VpcId=vpc),
                *_MISSING,
                "Gateway.NotAttached",
            )
        ignore_missing(lambda: ec2.delete_internet_gateway(InternetGatewayId=record.id), *_MISSING)


def _permissions(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for rule in rules:
        permission: dict[str, Any] = {
            "IpProtocol": str(rule["protocol"]),
            "FromPort": as_int(rule.get("fromPort", 0)),
            "ToPort": as_int(rule.get("toPort", 0)),
        }
        if rule.get("cidrBlocks"):
            permission["IpRanges"] = [{"CidrIp": c} for c in rule["cidrBlocks"]]
        if rule.get("securityGroups"):
            permission["UserIdGroupPairs"] = [{"GroupId": g} for g in rule["securityGroups"]]
        out.append(permission)
    return out


@provisioner
class SecurityGroup(Provisioner):
    type_token = "aws:ec2/securityGroup:SecurityGroup"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        ec2 = ctx.client("ec2")
        i = declared.inputs
        name = str(i.get("name") or declared.name)
        found = ec2.describe_security_groups(
            Filters=[
                {"Name": "group-name", "Values": [name]},
                {"Name": "vpc-id", "Values": [i["vpcId"]]},
            ]
        )["SecurityGroups"]
        if found:
            group_id = found[0]["GroupId"]
            # The declared rules replace whatever the group holds.
            if found[0].get("IpPermissions"):
                ec2.revoke_security_group_ingress(
                    GroupId=group_id, IpPermissions=found[0]["IpPermissions"]
                )
            if found[0].get("IpPermissionsEgress"):
                ec2.revoke_security_group_egress(
                    GroupId=group_id, IpPermissions=found[0]["IpPermissionsEgress"]
                )
        else:
            group_id = ec2.create_security_group(
                GroupName=name, Description=i.get("description", name), VpcId=i["vpcId"]
            )["GroupId"]
            default = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
            if default.get("IpPermissionsEgress"):
                ec2.revoke_security_group_egress(
                    GroupId=group_id, IpPermissions=default["IpPermissionsEgress"]
                )
        if i.get("ingress"):
            ec2.authorize_security_group_ingress(
                GroupId=group_id, IpPermissions=_permissions(i["ingress"])
            )
        if i.get("egress"):
            ec2.authorize_security_group_egress(
                GroupId=group_id, IpPermissions=_permissions(i["egress"])
            )
        return Provisioned(
            id=group_id,
            state={"id": group_id, "arn": _arn(ctx, "security-group", group_id), "name": name},
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        ec2 = ctx.client("ec2")
        ignore_missing(
            lambda: ec2.delete_security_group(GroupId=record.id), *_MISSING, "DependencyViolation"
        )


@provisioner
class VpcEndpoint(Provisioner):
    type_token = "aws:ec2/vpcEndpoint:VpcEndpoint"

    def ensure(self, ctx: Context, declared: Declared) -> Provisioned:
        ec2 = ctx.client("ec2")
        i = declared.inputs
        endpoint_id = _still_there(
            declared, lambda e: ec2.describe_vpc_endpoints(VpcEndpointIds=[e])
        )
        if endpoint_id is None:
            kwargs: dict[str, Any] = {
                "VpcEndpointType": i.get("vpcEndpointType", "Gateway"),
                "VpcId": i["vpcId"],
                "ServiceName": i["serviceName"],
            }
            for ours, theirs in (
                ("subnetIds", "SubnetIds"),
                ("securityGroupIds", "SecurityGroupIds"),
                ("routeTableIds", "RouteTableIds"),
            ):
                if i.get(ours):
                    kwargs[theirs] = list(i[ours])
            if "privateDnsEnabled" in i:
                kwargs["PrivateDnsEnabled"] = bool(i["privateDnsEnabled"])
            endpoint_id = ec2.create_vpc_endpoint(**kwargs)["VpcEndpoint"]["VpcEndpointId"]
        return Provisioned(
            id=endpoint_id, state={"id": endpoint_id, "arn": _arn(ctx, "vpc-endpoint", endpoint_id)}
        )

    def delete(self, ctx: Context, record: ResourceRecord) -> None:
        ec2 = ctx.client("ec2")
        ignore_missing(lambda: ec2.delete_vpc_endpoints(VpcEndpointIds=[record.id]), *_MISSING)
