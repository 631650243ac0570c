"""The image's entry point: the Gitea Action by default; `relay` or `worker` (with their options)
run the webhook relay or its workers through the CLI."""

import sys

if __name__ == "__main__":
    if sys.argv[1:2] in (["relay"], ["worker"]):
        from bojdeploy.frontends.cli import run

        sys.exit(run(sys.argv[1:]))
    from bojdeploy.frontends.action.run import main

    sys.exit(main())
