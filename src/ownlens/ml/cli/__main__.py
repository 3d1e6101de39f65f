from ownlens.ml.cli import main

main()
