from django import forms
from django.contrib.auth.forms import UserCreationForm

from chatsite.languages import language_choices
from chatsite.models import User


class SignupForm(UserCreationForm):
    language = forms.ChoiceField(choices=language_choices, help_text="The language you read and write.")

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "language")


class RoomForm(forms.Form):
    name = forms.CharField(max_length=120)
