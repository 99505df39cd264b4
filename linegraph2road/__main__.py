"""``python -m linegraph2road`` runs the ``l2r`` command line."""

from linegraph2road.cli.main import main

if __name__ == "__main__":
    main()
