"""The audit trail on Azure: tags on the registry's model version, read back by `mlops history`."""

from helpers import env_setting

from mlops import lifecycle

REGISTRY = f"/registries/{env_setting('dev', 'azure.registry')}"


def test_a_shared_version_takes_new_tags_and_keeps_its_files(ctx, fake):
    shared = lifecycle.share(ctx, "dev", lifecycle.register(ctx, "dev", lifecycle.train(ctx, "dev").id).ref)
    mark = fake.mark()
    tagged = ctx.backend("dev").tag_shared_model(shared, {"audit.prod.x": "{}"})
    for c in fake.since(mark):
        print(c.method, c.path, c.json() if c.method == "PUT" else "")
    assert tagged.tags["audit.prod.x"] == "{}"
