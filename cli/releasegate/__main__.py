from releasegate.app import main

main()
