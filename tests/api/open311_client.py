"""Open311 GeoReport v2 held against a published client library, unchanged: `georeport`
(PyPI) reads the services, a service definition, the public requests with and without
filters, and one request, in JSON and in XML, passing a jurisdiction_id as clients do.
The library does not post requests; the end-to-end tests post with a registered api_key.
"""

from georeport import GeoReport


def check(base):
    for fmt in ("json", "xml"):
        client = GeoReport(f"{base}/open311/v2", jurisdiction="990102", output_format=fmt)
        services = client.get_service_list()
        assert len(services) == 15, f"{fmt}: 15 services, got {len(services)}"
        codes = [s["service_code"] for s in services]
        assert all(s["service_name"] for s in services), f"{fmt}: every service is named"
        definition = client.get_service_definition(codes[1])
        assert definition["service_code"] == codes[1], f"{fmt}: definition {definition}"
        listed = client.get_service_requests()
        if isinstance(listed, dict):  # xmltodict gives one request as a mapping
            listed = [listed]
        assert listed, f"{fmt}: the demo's published requests are listed"
        first = listed[0]
        assert first["service_code"] in codes, f"{fmt}: {first}"
        one = client.get_service_request(first["service_request_id"])
        assert one["service_request_id"] == first["service_request_id"], f"{fmt}: {one}"
        assert one["status"] in ("open", "closed"), f"{fmt}: {one}"
        same = client.get_service_requests(service_code=first["service_code"], status=first["status"])
        if isinstance(same, dict):
            same = [same]
        assert same and all(
            r["service_code"] == first["service_code"] and r["status"] == first["status"] for r in same
        ), f"{fmt}: filtered by service_code and status"
        print(f"open311: georeport reads services, definitions and requests in {fmt.upper()}", flush=True)
