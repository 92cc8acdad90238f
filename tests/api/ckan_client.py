"""The CKAN Action API held against ckanapi (PyPI), the client CKAN's own tools use, unchanged:
it POSTs JSON to /api/action/<name> (and GETs with get_only), and turns CKAN's error objects
back into its exceptions. Reads the demo catalogue: site, datasets, search with filter
queries and facets, organizations, groups, tags, licences, resources and the datastore."""

import json

import ckanapi


def check(base):
    for get_only in (False, True):
        ckan = ckanapi.RemoteCKAN(base, user_agent="tongban-ci", get_only=get_only)
        how = "GET" if get_only else "POST"
        status = ckan.action.status_show()
        assert status["ckan_version"].startswith("2."), status
        names = ckan.action.package_list()
        assert "province-population-age-structure" in names and len(names) >= 18, f"{how}: {names}"

        found = ckan.action.package_search(q="养老", fq='organization:"990102-sg"', rows=5,
                                           **{"facet.field": ["organization", "tags", "res_format"]})
        assert found["count"] == 1, f"{how}: {found['count']}"
        dataset = found["results"][0]
        assert dataset["name"] == "mingyue-elderly-care-homes", dataset["name"]
        assert dataset["organization"]["name"] == "990102-sg"
        facets = found["search_facets"]["res_format"]["items"]
        assert {i["name"] for i in facets} == {"CSV", "JSON"}, facets
        paged = ckan.action.package_search(rows=2, start=2, sort="name asc")
        assert len(paged["results"]) == 2 and paged["count"] == len(names), paged["count"]
        assert [r["name"] for r in paged["results"]] == sorted(names)[2:4]

        shown = ckan.action.package_show(id="province-population-age-structure")
        assert shown["license_id"] == "cc-by" and shown["num_resources"] == 2, shown
        extras = {e["key"]: e["value"] for e in shown["extras"]}
        assert extras["source"] == "registry", extras

        orgs = ckan.action.organization_list(all_fields=True)
        assert any(o["name"] == "990000-ga" and o["package_count"] == 1 for o in orgs), orgs
        org = ckan.action.organization_show(id="990102-sg", include_datasets=True)
        assert org["package_count"] == len(org["packages"]) == 8, org["package_count"]
        groups = ckan.action.group_list()
        assert "civil_affairs" in groups, groups
        assert ckan.action.group_show(id="civil_affairs")["package_count"] >= 4
        assert "养老" in ckan.action.tag_list()
        assert {l["id"] for l in ckan.action.license_list()} == {"cc-by", "cc-zero"}
        with_resources = ckan.action.current_package_list_with_resources(limit=3)
        assert len(with_resources) == 3 and with_resources[0]["resources"]

        csv = next(r for r in dataset["resources"] if r["format"] == "CSV")
        assert ckan.action.resource_show(id=csv["id"])["url"].endswith("/data/datasets/mingyue-elderly-care-homes/data.csv")
        rows = ckan.action.datastore_search(resource_id=csv["id"], limit=3, sort="beds desc", fields="name,beds")
        beds = [r["beds"] for r in rows["records"]]
        assert beds == sorted(beds, reverse=True) and len(beds) == 3, rows
        assert [f["id"] for f in rows["fields"]] == ["name", "beds"]
        # In a query string an object travels as JSON text, as CKAN reads it.
        filters = {"kind": "公办"}
        public = ckan.action.datastore_search(resource_id=csv["id"],
                                              filters=json.dumps(filters) if get_only else filters)
        assert public["total"] == len(public["records"]) > 0
        assert all(r["kind"] == "公办" for r in public["records"])

        try:
            ckan.action.package_show(id="no-such-dataset")
            raise AssertionError("an unknown dataset is found")
        except ckanapi.NotFound:
            pass
        try:
            ckan.action.package_show()
            raise AssertionError("package_show without an id answers")
        except ckanapi.ValidationError as e:
            assert "id" in e.error_dict, e.error_dict
        conditional = ckan.action.package_show(id="mingyue-relief-households-by-community")
        assert conditional["isopen"] is False
        try:
            ckan.action.datastore_search(resource_id=conditional["resources"][0]["id"])
            raise AssertionError("a conditional dataset's rows are read without a key")
        except ckanapi.NotAuthorized:
            pass
        try:
            ckan.action.package_search(fq="nonsense_field:1")
            raise AssertionError("an unknown search field is accepted")
        except ckanapi.SearchQueryError:
            pass
    print("CKAN Action API: ckanapi reads the catalogue and the datastore, by POST and by GET")
