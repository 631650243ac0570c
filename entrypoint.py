"""The Gitea Action's entry point: run bojdeploy's action front end with act_runner's env."""

import sys

from bojdeploy.action import main

if __name__ == "__main__":
    sys.exit(main())
