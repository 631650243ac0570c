"""The Gitea Action's entry point: run bojdeploy's action front end with act_runner's env."""

import sys

from bojdeploy.frontends.action.run import main

if __name__ == "__main__":
    sys.exit(main())
