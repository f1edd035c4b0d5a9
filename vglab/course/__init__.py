"""The coursework's grading machinery (notebooks/coursework; issue 16).

``grading``   the out-of-kernel judges of every autograded test cell and the kernel-side ``submit`` that records
              a student's answers as plain data;
``rescue``    assignment 3's measurements (``TRAINING``, ``gradient_report``, ``training_report``), shared by the
              notebook and its judge;
``autograde`` ``JudgedExecute``, the nbgrader preprocessor that runs each notebook and then judges the recorded
              answers in nbgrader's own process (imports nbgrader; only the course's nbgrader_config.py names it).
"""
